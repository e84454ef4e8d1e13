// Memory backing: images in process memory, 64-byte aligned so object data
// (at a 64-byte offset in the image) is aligned for any type. Checksums are
// not maintained at rest here: export_image() seals each copy it hands out.
#include <cstdlib>
#include <cstring>

#include "backing.hpp"

namespace ferry {
namespace {

class memory_segment final : public segment {
 public:
  explicit memory_segment(std::span<const std::byte> image)
      : size_(image.size()), bytes_(static_cast<std::byte*>(std::aligned_alloc(64, (size_ + 63) / 64 * 64))) {
    if (!bytes_) throw std::bad_alloc();
    std::memcpy(bytes_.get(), image.data(), size_);
  }
  std::span<std::byte> image() override { return {bytes_.get(), size_}; }
  result<void> commit(std::span<const image_patch> patches) override {
    for (const auto& p : patches) std::memcpy(bytes_.get() + p.offset, p.bytes.data(), p.bytes.size());
    return {};
  }
  result<void> reseal() override { return {}; }

 private:
  struct freer {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::size_t size_;
  std::unique_ptr<std::byte, freer> bytes_;
};

class memory_backing final : public store::backing {
 public:
  std::string describe() const override { return "memory"; }
  result<std::unique_ptr<segment>> install(object_id, std::span<const std::byte> image) override {
    return std::unique_ptr<segment>(std::make_unique<memory_segment>(image));
  }
  result<void> erase(object_id) override { return {}; }
  std::vector<std::pair<object_id, result<std::unique_ptr<segment>>>> recover() override { return {}; }
};

}  // namespace

std::unique_ptr<store::backing> make_memory_backing() { return std::make_unique<memory_backing>(); }

}  // namespace ferry
