// ifunc/message.hpp — ifunc messages: build one at the source (payload_bound,
// payload_init), put it into a target's buffer, and take and run it there.
// Byte format: wire/ifunc_frame.hpp (docs/protocol.md, "ifunc messages").
//
// A message owns two images of the same payload: the short one (header,
// payload, trailer) that every send after the first to an endpoint carries,
// and the full one (with the code section) built when an endpoint gets the
// ifunc for the first time. `frame` is the short image; the payload the user
// writes through payload() is in it and copied into the full image when that
// is sent.
#pragma once

#include <ucp/api/ucp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include <ferry/status.hpp>

#include "registry.hpp"

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
const entry* ifunc_of(void* frame);

/// Put the message into `remote_addr` at `ep`'s peer: with the code section
/// on the first send to `ep` (or always, with FERRY_IFUNC_SEND_CODE=always),
/// else without. Returns the put's UCX status (UCS_OK or UCS_INPROGRESS:
/// complete it with a flush, as for ucp_put_nbi).
ucs_status_t send_message(ucp_ep_h ep, void* frame, std::uint64_t remote_addr, ucp_rkey_h rkey);

/// What one poll did.
enum class poll_outcome { ran, nothing };
/// Check `buffer` for a message; run it if it is whole. Nothing there, or
/// still arriving: progresses `worker`, returns nothing. A message is taken
/// (its signal cleared) before its NAME_main runs, or when it is refused:
/// errc::too_large when it does not fit `buffer_size` (nothing past the
/// buffer is read), errc::unknown_code for a message without code whose
/// ifunc this scope does not have (never registered, or deregistered),
/// bad_format / bad_version / corrupt for a malformed message, and the
/// registry's errors when auto-registration of shipped code fails.
result<poll_outcome> poll_message(registry& reg, scope owner, void* buffer, std::size_t buffer_size,
                                  void* target_args, ucp_worker_h worker);

}  // namespace ferry::ifunc
