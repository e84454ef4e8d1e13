// UCX ifunc messages, version 1 — the bytes an ifunc sender puts into a
// target's buffer (ucp_ifunc_send_nbix) and ucp_poll_ifunc reads there.
// Specification: docs/protocol.md ("ifunc messages"). Encoding: wire/codec.hpp.
//
//   header (64 bytes) | payload | code section (optional) | pad to 8 | trailer (u64)
//
// One put carries the whole message. The magic at offset 0 says a message is
// arriving; the trailer, equal to the header's nonce (one per message),
// says it is complete. Both sit at one place per message, and the target
// clears both when it takes the message, so no byte left by an earlier
// message can pass for a signal of this one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

namespace ferry::wire {

inline constexpr std::uint32_t kIfuncMagic = 0x43464946;  // "FIFC"
inline constexpr std::uint8_t kIfuncVersion = 1;
inline constexpr std::size_t kIfuncHeaderSize = 64;

/// What the header says about one message.
struct ifunc_header {
  bool code_attached = false;  ///< a code section follows the payload
  object_id key;               ///< the ifunc's registry key (content hash)
  std::uint64_t payload_size = 0;
  std::uint64_t code_size = 0;  ///< 0 unless code_attached
  std::uint64_t nonce = 0;      ///< one per message, never 0; the trailer repeats it
  /// Where the trailer is: after header, payload and code, 8-aligned.
  [[nodiscard]] std::uint64_t trailer_offset() const {
    return (kIfuncHeaderSize + payload_size + code_size + 7) & ~std::uint64_t{7};
  }
  /// The bytes the message occupies, trailer included.
  [[nodiscard]] std::uint64_t frame_size() const { return trailer_offset() + 8; }
};

/// Write `h` (magic included) into the first kIfuncHeaderSize bytes of `out`.
void encode_ifunc_header(const ifunc_header& h, std::span<std::uint8_t, kIfuncHeaderSize> out);
/// Read a header whose magic is present: bad_version for another version,
/// bad_format for unknown flags, non-zero reserved bytes, a code size without
/// the flag, or sizes that overflow. Untrusted input OK.
result<ifunc_header> decode_ifunc_header(std::span<const std::uint8_t, kIfuncHeaderSize> in);

/// Is a message's magic at the start of `buffer` (acquire: the bytes it
/// covers are visible once it is)? `buffer` must hold 4 bytes.
bool ifunc_signal_present(const void* buffer);
/// Has the trailer of the message `h` (header at `buffer`) arrived? The caller
/// checked that frame_size() fits the buffer.
bool ifunc_trailer_present(const void* buffer, const ifunc_header& h);
/// Refuse a message whose header cannot be trusted: clear its magic only.
void ifunc_clear_magic(void* buffer);
/// Take the message: clear its magic and trailer.
void ifunc_clear_signal(void* buffer, const ifunc_header& h);
/// Write the trailer of `h` into the message image at `frame`.
void write_ifunc_trailer(void* frame, const ifunc_header& h);

/// A whole message found in a buffer: its header, payload and code section
/// (empty unless header.code_attached), all inside the buffer.
struct ifunc_arrival {
  ifunc_header header;
  std::span<std::uint8_t> payload;
  std::span<const std::uint8_t> code;
};
/// Look for a whole message at the start of `buffer` (a peer wrote it: every
/// byte untrusted), the reading half of taking one. Nothing: no magic, or
/// its trailer has not arrived. A message whose header is malformed
/// (decode_ifunc_header's errors) or does not fit `buffer_size`
/// (errc::too_large; nothing past the buffer is read) has its magic cleared
/// and is an error. invalid_argument: `buffer` is not 8-aligned or holds
/// less than a header and a trailer. The caller clears a found message's
/// signal (ifunc_clear_signal) once it took it.
result<std::optional<ifunc_arrival>> read_ifunc_message(void* buffer, std::size_t buffer_size);

/// The code section: what a target needs to register an ifunc it has never
/// seen (the prototype's auto-registration), identified by the header's key.
struct ifunc_code {
  std::string name;                ///< NAME of NAME_main
  bool pure = false;               ///< links against ferry's allow-list only
  std::vector<std::string> deps;   ///< shared libraries to load first (NAME.deps)
  /// The bitcode of every target (docs/code-objects.md). Its signature slot
  /// carries a signed library's signature (NAME.sig, `ferry sign --ifunc`):
  /// the slot is in every encoding, so signing changes no byte format.
  code_object code;
};
std::vector<std::uint8_t> encode_ifunc_code(const ifunc_code& c);
/// Parse and verify (lengths; the code object as code_object::decode does).
result<ifunc_code> decode_ifunc_code(std::span<const std::uint8_t> bytes);

}  // namespace ferry::wire
