// Whole-buffer POSIX I/O, written once: every loop that retries on EINTR and
// short transfers lives here (stores, the JIT's disk cache and sandbox pipe,
// the host-list bootstrap's sockets, process reaping).
//
// Errors are ferry::status values: errc::io_error with the OS's reason (or
// "closed" when the other end went away), errc::timeout when a deadline
// passed. Nothing here throws or asserts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <sys/types.h>

#include <ferry/status.hpp>

namespace ferry::core {

using io_clock = std::chrono::steady_clock;

/// Blocking descriptors (files, pipes): write all of `bytes`, at `offset`
/// (pwrite) if given.
status write_all(int fd, std::span<const std::byte> bytes, std::optional<std::uint64_t> offset = std::nullopt);
/// Blocking descriptors: read exactly `into.size()` bytes; end of file first
/// is an io_error saying how many arrived.
status read_exact(int fd, std::span<std::byte> into);

/// Sockets, bounded by `deadline`: wait until `fd` has `events` (POLLIN,
/// POLLOUT).
status wait_fd(int fd, short events, io_clock::time_point deadline);
/// Sockets (blocking or not), bounded by `deadline`; never raises SIGPIPE.
status send_all(int fd, std::span<const std::byte> bytes, io_clock::time_point deadline);
status recv_all(int fd, std::span<std::byte> into, io_clock::time_point deadline);

/// waitpid() for `pid`, retried on EINTR: its wait status.
result<int> wait_child(pid_t pid);

/// Views of any trivially copyable buffer as bytes, for the calls above.
inline std::span<const std::byte> bytes_of(const void* p, std::size_t n) { return {static_cast<const std::byte*>(p), n}; }
inline std::span<std::byte> bytes_of(void* p, std::size_t n) { return {static_cast<std::byte*>(p), n}; }

}  // namespace ferry::core
