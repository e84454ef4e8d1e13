// Zeroed memory straight from the kernel, for object images, large frames
// and other large tables a process keeps: an anonymous private mapping, whose
// pages cost no memory until first written and go back to the system when it
// is unmapped.
//
// From kHugePageBytes up the mapping starts on a huge-page boundary and is
// advised for transparent huge pages (MADV_HUGEPAGE; this machine's kernels
// default to `madvise`, so nothing else gets them). Touching such a range
// the first time then faults in 2 MiB at once instead of 512 pages of 4 KiB,
// each a trip into the kernel, and reading it at random misses the TLB less:
// docs/architecture.md, "Large objects live in huge pages".
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include <ferry/status.hpp>

namespace ferry {

/// The mapping below as raw memory: `bytes` (at least one) zero bytes, from
/// kHugePageBytes up aligned and advised for huge pages (`*huge` says if the
/// kernel took the advice); null if the kernel refuses the mapping. Give it
/// back with unmap_anonymous(p, bytes).
std::byte* map_anonymous(std::size_t bytes, bool* huge = nullptr) noexcept;
void unmap_anonymous(std::byte* p, std::size_t bytes) noexcept;

class anonymous_mapping {
 public:
  /// The huge-page size mappings are aligned to (x86-64's and AArch64's
  /// with 4 KiB pages). Smaller mappings are not aligned or advised: no
  /// huge page fits in them.
  static constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

  /// `bytes` zero bytes (at least one). out_of_memory if the kernel refuses.
  /// A kernel without transparent huge pages refuses the advice; the
  /// mapping is made all the same (huge_pages_advised() says which).
  static result<anonymous_mapping> map(std::size_t bytes);

  anonymous_mapping() = default;
  anonymous_mapping(anonymous_mapping&& other) noexcept;
  anonymous_mapping& operator=(anonymous_mapping&& other) noexcept;
  anonymous_mapping(const anonymous_mapping&) = delete;
  anonymous_mapping& operator=(const anonymous_mapping&) = delete;
  ~anonymous_mapping();

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// True if the kernel took the huge-page advice for the whole mapping.
  [[nodiscard]] bool huge_pages_advised() const noexcept { return huge_; }

 private:
  anonymous_mapping(std::byte* data, std::size_t size, bool huge) noexcept : data_(data), size_(size), huge_(huge) {}
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool huge_ = false;
};

/// The allocator of buffers that are at times large (a transport's frames):
/// an allocation of kHugePageBytes and up is a mapping of its own in huge
/// pages, so a large frame read into fresh memory faults in 2 MiB at a time;
/// smaller ones come from operator new. Elements are default-initialized: a
/// buffer resized to be read into is not zeroed first.
template <class T>
struct large_buffer_allocator {
  using value_type = T;
  large_buffer_allocator() = default;
  template <class U>
  large_buffer_allocator(const large_buffer_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes < anonymous_mapping::kHugePageBytes) return static_cast<T*>(::operator new(bytes));
    if (std::byte* p = map_anonymous(bytes)) return reinterpret_cast<T*>(p);
    throw std::bad_alloc();
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < anonymous_mapping::kHugePageBytes) ::operator delete(p);
    else unmap_anonymous(reinterpret_cast<std::byte*>(p), bytes);
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) ::new (static_cast<void*>(p)) U;
    else ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const large_buffer_allocator<U>&) const noexcept { return true; }
};

/// Bytes of a buffer that may be large (large_buffer_allocator).
using large_bytes = std::vector<std::uint8_t, large_buffer_allocator<std::uint8_t>>;

}  // namespace ferry
