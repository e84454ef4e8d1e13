// Reads a thread keeps in flight while it does something else: the
// read-ahead of direct_reader.cpp. Built on io_uring (liburing) where the
// build has it (FERRY_WITH_URING, read_queue_uring.cpp); without it
// (read_queue_absent.cpp: the aarch64 node build) or where the kernel
// refuses a ring (qemu-user, a seccomp filter), open() gives nothing and
// every read is synchronous.
//
// A queue belongs to one thread: nothing here locks.
#pragma once

#include <cstdint>
#include <memory>

namespace ferry::object {

class read_queue {
 public:
  /// A queue that holds up to `depth` reads in flight, or nullptr when the
  /// build or the kernel has none.
  static std::unique_ptr<read_queue> open(unsigned depth);
  virtual ~read_queue() = default;

  /// Start a pread of `length` bytes at `offset` of `fd` into `into`, to be
  /// reported under `tag`. `into` must stay valid until reported. False if
  /// it could not be started: the read may still be queued, so the caller
  /// gives `into` up for good and uses this queue no more.
  virtual bool start(int fd, void* into, std::uint32_t length, std::uint64_t offset, std::uint64_t tag) = 0;

  struct done {
    std::uint64_t tag;
    std::int64_t result;  ///< bytes read, or -errno
  };
  /// Wait for the next started read to end. Only called with reads in flight.
  virtual done wait() = 0;
};

}  // namespace ferry::object
