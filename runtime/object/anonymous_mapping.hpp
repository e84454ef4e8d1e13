// Zeroed memory straight from the kernel, for object images and other large
// tables a process keeps: an anonymous private mapping, whose pages cost no
// memory until first written and go back to the system when it is unmapped.
//
// From kHugePageBytes up the mapping starts on a huge-page boundary and is
// advised for transparent huge pages (MADV_HUGEPAGE; this machine's kernels
// default to `madvise`, so nothing else gets them). Touching such a range
// the first time then faults in 2 MiB at once instead of 512 pages of 4 KiB,
// each a trip into the kernel, and reading it at random misses the TLB far
// less: docs/architecture.md, "Large objects live in huge pages".
#pragma once

#include <cstddef>

#include <ferry/status.hpp>

namespace ferry {

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

}  // namespace ferry
