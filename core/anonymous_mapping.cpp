#include "anonymous_mapping.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace ferry {
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::byte* map_anonymous(std::size_t bytes, bool* huge) noexcept {
  if (huge) *huge = false;
  if (bytes == 0) {
    errno = EINVAL;
    return nullptr;
  }
  const bool large = bytes >= anonymous_mapping::kHugePageBytes;
  // A huge page needs an aligned start: map one huge page more, then give
  // back what lies before the first boundary and after the mapping's end.
  const std::size_t slack = large ? anonymous_mapping::kHugePageBytes : 0;
  if (bytes > std::numeric_limits<std::size_t>::max() - 2 * anonymous_mapping::kHugePageBytes) {
    errno = ENOMEM;
    return nullptr;
  }
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t reserved = round_up(bytes + slack, page);
  void* m = ::mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  auto* base = static_cast<std::byte*>(m);
  if (!large) return base;
  auto* start = reinterpret_cast<std::byte*>(round_up(reinterpret_cast<std::uintptr_t>(base), anonymous_mapping::kHugePageBytes));
  const auto head = static_cast<std::size_t>(start - base);
  const std::size_t kept = round_up(bytes, page);
  if (head > 0) ::munmap(base, head);
  if (reserved > head + kept) ::munmap(start + kept, reserved - head - kept);
  const bool advised = ::madvise(start, kept, MADV_HUGEPAGE) == 0;
  if (huge) *huge = advised;
  return start;
}

void unmap_anonymous(std::byte* p, std::size_t bytes) noexcept {
  if (p) ::munmap(p, bytes);
}

result<anonymous_mapping> anonymous_mapping::map(std::size_t bytes) {
  if (bytes == 0) return make_error(errc::invalid_argument, "cannot map 0 bytes");
  bool huge = false;
  std::byte* p = map_anonymous(bytes, &huge);
  if (!p) return make_error(errc::out_of_memory, fmt::format("cannot map {} bytes: {}", bytes, std::strerror(errno)));
  return anonymous_mapping(p, bytes, huge);
}

anonymous_mapping::anonymous_mapping(anonymous_mapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)), huge_(other.huge_) {}

anonymous_mapping& anonymous_mapping::operator=(anonymous_mapping&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    huge_ = other.huge_;
  }
  return *this;
}

anonymous_mapping::~anonymous_mapping() { release(); }

void anonymous_mapping::release() noexcept {
  unmap_anonymous(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace ferry
