// Reading a file store's object at rest (segment::read_at_rest, behind
// store::read_at_rest: cx.read, and a storage node's gets): the object's
// file read with O_DIRECT, so that a scan neither fills the page cache nor
// faults the object's mapping in. O_DIRECT also means no readahead from the
// kernel, so this file gives a reader its own: a thread that reads one file
// in order has the next blocks read while it works on the last.
//
// Read-ahead, for each thread (nothing is shared between threads but the
// file's descriptor):
// - a read that starts where the same thread's last read of the same file
//   ended is "in order"; after one, the thread keeps kAheadBlocks blocks of
//   kBlock bytes (block-aligned in the file) past the end of that read in
//   flight (read_queue: io_uring), and later reads copy from them;
// - every block remembers the file's version when its read was started; a
//   change of the image (a commit, a reseal, its mapping lent for writing:
//   direct_file::changed) makes the version differ, and the blocks are
//   dropped unread;
// - a read that is not in order, of another file or with read-ahead not
//   allowed (a call that holds the object's mapping for writing: its own
//   writes since must be seen) waits for the blocks in flight, drops them,
//   and reads synchronously;
// - a thread that reaches the end of the file, or moves to another file,
//   lets the file go (a removed object's blocks on the device are freed
//   when its last descriptor closes).
// A thread that ever read ahead keeps its buffers (kAheadBlocks * kBlock
// bytes, plus kBlock for synchronous reads) until it ends: fresh pages
// cost 10-15 us each in this VM, more than a block's read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include <ferry/status.hpp>

namespace ferry::object {

class direct_file {
 public:
  /// A block of the file: the unit of read-ahead, and the largest
  /// synchronous O_DIRECT read.
  static constexpr std::uint64_t kBlock = std::uint64_t{1} << 20;
  /// Blocks a thread reading in order keeps in flight.
  static constexpr unsigned kAheadBlocks = 4;
  /// O_DIRECT's alignment of offsets, lengths and buffers.
  static constexpr std::uint64_t kAlign = 4096;

  /// `path` (a whole image of `size` bytes) opened with O_DIRECT;
  /// unsupported if its file system refuses O_DIRECT (tmpfs).
  static result<std::shared_ptr<direct_file>> open(const std::filesystem::path& path, std::uint64_t size);
  ~direct_file();
  direct_file(const direct_file&) = delete;
  direct_file& operator=(const direct_file&) = delete;

  /// The image changed, or may change through its mapping: what any thread
  /// read ahead of it is not read from again.
  void changed() { version_.fetch_add(1, std::memory_order_acq_rel); }

  /// Copy bytes [offset, +out.size()) of the file (inside it) into `out`,
  /// this thread's blocks read ahead serving what they hold; `ahead`:
  /// whether this read may use and start reads ahead. io_error with the
  /// OS's reason, or for a short read.
  static result<void> read(const std::shared_ptr<direct_file>& file, std::uint64_t offset, std::span<std::byte> out,
                           bool ahead);

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  direct_file(std::filesystem::path path, int fd, std::uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  std::filesystem::path path_;
  int fd_;
  std::uint64_t size_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace ferry::object
