// Memory backing: images in process memory, 64-byte aligned so object data
// (at a 64-byte offset in the image) is aligned for any type. Checksums are
// not maintained at rest here: export_image() seals each copy it hands out.
//
// Large images (kMapThreshold and up) are anonymous mappings: a new object's
// zero bytes cost no memory until written, freeing one returns its memory to
// the system at once, and from 2 MiB up they live in huge pages
// (anonymous_mapping).
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "core/anonymous_mapping.hpp"
#include "backing.hpp"

namespace ferry {
namespace {

constexpr std::size_t kMapThreshold = std::size_t{1} << 20;

class memory_segment final : public segment {
 public:
  /// Zeroed memory for an image of `size` bytes, or an out_of_memory error.
  static result<std::unique_ptr<memory_segment>> allocate(std::uint64_t size) {
    if (size > std::numeric_limits<std::size_t>::max() - 64)
      return make_error(errc::out_of_memory, fmt::format("cannot allocate {} bytes for an object", size));
    const auto n = static_cast<std::size_t>(size);
    if (n >= kMapThreshold) {
      FERRY_TRY(auto mapping, anonymous_mapping::map(n));
      return std::unique_ptr<memory_segment>(new memory_segment(std::move(mapping)));
    }
    auto* p = static_cast<std::byte*>(std::aligned_alloc(64, (n + 63) / 64 * 64));
    if (!p) return make_error(errc::out_of_memory, fmt::format("cannot allocate {} bytes for an object", size));
    std::memset(p, 0, n);
    return std::unique_ptr<memory_segment>(new memory_segment(p, n));
  }
  ~memory_segment() override {
    if (!mapping_.data()) std::free(bytes_);
  }
  std::span<std::byte> image() override { return {bytes_, size_}; }
  result<void> commit(std::span<const image_patch> patches) override {
    for (const auto& p : patches) std::memcpy(bytes_ + p.offset, p.bytes.data(), p.bytes.size());
    return {};
  }
  result<void> reseal(std::span<const image_range>) override { return {}; }

 private:
  memory_segment(std::byte* p, std::size_t n) : bytes_(p), size_(n) {}
  explicit memory_segment(anonymous_mapping mapping)
      : mapping_(std::move(mapping)), bytes_(mapping_.data()), size_(mapping_.size()) {}
  anonymous_mapping mapping_;  // large images; small ones are bytes_ from aligned_alloc
  std::byte* bytes_;
  std::size_t size_;
};

class memory_backing final : public store::backing {
 public:
  std::string describe() const override { return "memory"; }
  bool persistent() const override { return false; }
  result<std::unique_ptr<segment>> install(object_id, std::span<const std::byte> image) override {
    FERRY_TRY(auto seg, memory_segment::allocate(image.size()));
    std::memcpy(seg->image().data(), image.data(), image.size());
    return std::unique_ptr<segment>(std::move(seg));
  }
  result<std::unique_ptr<segment>> install_zero(object_id, std::span<std::byte> prefix,
                                                std::uint64_t image_size) override {
    FERRY_TRY(auto seg, memory_segment::allocate(image_size));
    std::memcpy(seg->image().data(), prefix.data(), prefix.size());  // the rest is zero; no checksum at rest
    return std::unique_ptr<segment>(std::move(seg));
  }
  // The pending image's memory (make_pending's default) becomes the object's.
  result<std::unique_ptr<segment>> install_pending(object_id, std::unique_ptr<segment>& pending,
                                                   const layout::seal_tree*) override {
    return std::move(pending);
  }

  result<void> erase(object_id) override { return {}; }
  std::vector<std::pair<object_id, result<std::unique_ptr<segment>>>> recover() override { return {}; }
};

}  // namespace

std::unique_ptr<store::backing> make_memory_backing() { return std::make_unique<memory_backing>(); }

result<std::unique_ptr<segment>> make_memory_segment(std::uint64_t size) {
  FERRY_TRY(auto seg, memory_segment::allocate(size));
  return std::unique_ptr<segment>(std::move(seg));
}

}  // namespace ferry
