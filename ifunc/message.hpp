// ifunc/message.hpp — ifunc messages: build one at the source (payload_bound,
// payload_init), the image a send to a peer carries, and take one out of a
// target's buffer. Byte format: wire/ifunc_frame.hpp (docs/protocol.md,
// "ifunc messages"). How the image travels is the front end's business (a
// UCX put, ucp_ifunc.cpp; a ferry frame, service.cpp).
//
// A message owns two images of the same payload: the short one (header,
// payload, trailer) that every send after the first to an endpoint carries,
// and the full one (with the code section) built when an endpoint gets the
// ifunc for the first time. `frame` is the short image; the payload the user
// writes through payload() is in it and copied into the full image when that
// is sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include <ferry/status.hpp>

#include "ifunc/registry.hpp"

namespace ferry::ifunc {

/// A built message: `frame` for ucp_ifunc_msg_t.frame; `frame_size` is what
/// its first send to an endpoint carries (code included).
struct built_message {
  void* frame = nullptr;
  std::size_t frame_size = 0;
};

/// Build a message of `fn` for `source_args`. errc::cancelled when
/// NAME_payload_init returns non-zero (its value in the message),
/// errc::out_of_bounds when it reports a payload larger than
/// NAME_payload_bound allowed, errc::out_of_memory.
result<built_message> create_message(std::shared_ptr<entry> fn, void* source_args, std::size_t source_args_size);
/// The payload of a built message (writable until it is sent).
result<std::pair<void*, std::size_t>> payload_of(void* frame);
/// Free a built message (sends in flight must have completed: flush first).
void free_message(void* frame);
/// The ifunc a message runs (the message keeps it alive).
entry* ifunc_of(void* frame);

/// The image a send of the message to `peer` carries: with the code section
/// on the first send to `peer` (or always, with FERRY_IFUNC_SEND_CODE=always),
/// else without. Valid until the message is freed; a later full image is
/// written over it in place (see message.cpp).
std::span<const std::uint8_t> image_for(void* frame, std::uint64_t peer);

/// A message taken out of a buffer, ready to run: fn->main(payload,
/// payload_size, target_args). `fn` keeps its code alive while it runs.
struct taken_message {
  std::shared_ptr<entry> fn;
  void* payload = nullptr;
  std::size_t payload_size = 0;
};
/// Check `buffer` for a whole message and take it (clear its signal): the
/// ifunc to run, found in `owner` by key or registered there from the code
/// it carries (linked as `how`). Nothing there, or still arriving: nothing.
/// A refused message is taken too: errc::too_large when it does not fit
/// `buffer_size` (nothing past the buffer is read), errc::unknown_code for
/// a message without code whose ifunc this scope does not have (never
/// registered, or deregistered), bad_format / bad_version / corrupt for a
/// malformed message, and the registry's errors when auto-registration of
/// shipped code fails. errc::invalid_argument for a buffer that is not
/// 8-aligned or smaller than a message's header and trailer. `found`: the
/// entry the caller already looked up in `owner` for this message's key
/// (a node finds it to choose where the message runs), used instead of a
/// second lookup when its key is the message's.
result<std::optional<taken_message>> take_message(registry& reg, scope owner, const linking& how, void* buffer,
                                                  std::size_t buffer_size, std::shared_ptr<entry> found = nullptr);

}  // namespace ferry::ifunc
