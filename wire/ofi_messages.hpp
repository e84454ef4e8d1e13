// libfabric transport messages, version 1 — the bytes two ofi transports
// (runtime/transport/ofi.cpp) exchange underneath runtime frames.
// Specification: docs/transports.md. Encoding: wire/codec.hpp.
//
// Every message starts with a 4-byte header:
//
//   u8 version (1) | u8 kind | u16 zero
//
//   frame (1):           the frame's bytes follow (an eager frame)
//   rendezvous (2):      u64 token | u64 length | u64 address | u64 key |
//                        u32 length + the sender's endpoint address —
//                        "read `length` bytes of my frame with fi_read at
//                        address/key, then answer rendezvous_done(token)"
//   rendezvous_done (3): u64 token — the sender may free that frame
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::wire::ofi {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 4;
/// An endpoint address longer than this is malformed.
inline constexpr std::size_t kMaxAddress = 1 << 12;

enum class kind : std::uint8_t { frame = 1, rendezvous = 2, rendezvous_done = 3 };

/// Write the header of a `k` message at `out` (kHeaderSize bytes).
void put_header(std::uint8_t* out, kind k);
/// The kind of a message. Errors: bad_format (short, unknown kind, nonzero
/// reserved bytes), bad_version.
result<kind> read_header(std::span<const std::uint8_t> message);

struct rendezvous {
  std::uint64_t token = 0;
  std::uint64_t length = 0;   ///< at most wire::kMaxFrame
  std::uint64_t address = 0;  ///< as the provider's MR mode wants it (virtual address or offset)
  std::uint64_t key = 0;
  std::vector<std::uint8_t> sender;  ///< the sender's endpoint address
};

/// Header and body of a rendezvous message into `out` (cleared first).
void encode(const rendezvous& r, std::vector<std::uint8_t>& out);
/// Errors: bad_format, bad_version.
result<rendezvous> decode_rendezvous(std::span<const std::uint8_t> message);

/// Header and body of a rendezvous_done message (kHeaderSize + 8 bytes) at `out`.
void put_rendezvous_done(std::uint8_t* out, std::uint64_t token);
inline constexpr std::size_t kRendezvousDoneSize = kHeaderSize + 8;
/// The token of a rendezvous_done message. Errors: bad_format.
result<std::uint64_t> decode_rendezvous_done(std::span<const std::uint8_t> message);

}  // namespace ferry::wire::ofi
