// Runtime protocol frames, version 1 — the bytes nodes and clients exchange.
// Specification: docs/protocol.md. Encoding: wire/codec.hpp (little-endian,
// u32-length-prefixed strings and byte strings).
//
// Every frame starts with a 20-byte header:
//
//   u16 magic 0xF7E1 | u8 version (1) | u8 type | u32 source node |
//   u64 call id      | u32 body length
//
// followed by exactly `body length` bytes of a type-specific body. decode()
// checks the header, the length, and every field of the body against the
// buffer; anything else is errc::bad_format / bad_version, never a crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/ref.hpp>
#include <ferry/status.hpp>

namespace ferry::wire {

inline constexpr std::uint16_t kFrameMagic = 0xF7E1;
inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 20;

/// Node index in a cluster; kClient marks a process that holds no data.
using node_index = std::uint32_t;
inline constexpr node_index kNoNode = 0xffffffffu;

enum class frame_type : std::uint8_t {
  hello = 1,          ///< membership: who I am and how to reach me
  invoke = 2,         ///< run code on data here (or forward it)
  reply = 3,          ///< result of a call, to the original caller
  error = 4,          ///< a call (or request) failed
  code_request = 5,   ///< "send me code object X"
  code_response = 6,  ///< an encoded code object
  object_create = 7,
  object_put = 8,
  object_get = 9,
  object_remove = 10,
  object_data = 11,   ///< bytes answering object_get
  ack = 12,           ///< success without data (create/put/remove)
  heartbeat = 13,     ///< liveness, carrying the sender's load (a load_body)
  shutdown = 14,      ///< stop serving
  echo = 15,          ///< benchmark/diagnostic: bounce the body back
  dir_register = 16,  ///< directory: object `id` is owned by node `owner` (kNoNode: removed)
  object_migrate = 17,  ///< move object `id` to node `owner` (a dir_register_body); ack or error
  object_image = 18,    ///< a part of a moving object's sealed image, source -> destination (an object_image_body); ack or error
  dir_lookup = 19,      ///< "who owns `id`?" (an object_remove_body), to every node; answered by dir_register
  ifunc = 20,           ///< an ifunc message for a context (<ferry/ifunc.h>), or its failure reported to the origin
  // The end of a move (docs/mobility.md, "Migration"), each a dir_register_body naming the destination:
  object_commit = 21,      ///< source -> destination: the move committed, make the pending image live; ack or error
  object_abort = 22,       ///< source -> destination: the move did not happen, drop the pending image; no answer
  object_move_query = 23,  ///< destination -> source: what became of this move? answered by object_commit or object_abort
};

struct hello_body {
  node_index index = kNoNode;
  std::uint8_t kind = 0;  ///< ferry_node_kind
  std::string triple;
  std::string cpu;  ///< the CPU its JIT generates code for ("cortex-a72")
  std::vector<std::uint8_t> address;  ///< transport address
};

/// invoke_body::flags: run on the receiving node even if the target is not
/// there (call_options::node); cx.local then reports not_local.
inline constexpr std::uint8_t kInvokePinned = 1;
/// invoke_body::flags: placement sent the call here to run on pulled data:
/// run on the receiving node, and cx.local of an object held elsewhere pulls
/// a private copy of the range from its owner (docs/mobility.md, "Placement").
inline constexpr std::uint8_t kInvokePull = 2;
/// invoke_body::flags: preload (runtime::preload): make the code resident on
/// the receiving node (ship, check, compile, link) and answer with an empty
/// reply; run nothing. The target and arguments are ignored.
inline constexpr std::uint8_t kInvokeLoadOnly = 4;
/// invoke_body::flags, with kInvokeLoadOnly (runtime::preload,
/// preload_options::optimized): answer only once the code runs at the
/// optimized tier on the receiving node (recompiled now if it is resident
/// at the fast tier).
inline constexpr std::uint8_t kInvokeOptimize = 8;

struct invoke_body {
  object_id code;                  ///< content id of the code object
  std::string symbol;              ///< mangled symbol (to request the code by)
  std::uint64_t signature_hash = 0;
  node_index origin = kNoNode;     ///< who receives the final result
  std::uint64_t origin_call = 0;   ///< the origin's call id
  node_index code_holder = kNoNode;  ///< a node to pull the code from on a miss
  std::uint64_t deadline_us = 0;   ///< absolute, CLOCK_REALTIME µs; 0 = none
  std::uint16_t hops = 0;          ///< forwards so far (bounded by the node)
  std::uint8_t flags = 0;          ///< kInvokePinned
  ref<void> target;                ///< the data the call is routed by
  std::vector<std::uint8_t> args;  ///< argument block (code_object.hpp)
  std::vector<std::uint8_t> code_blob;  ///< optional eager push of the code object
};

struct reply_body {
  std::vector<std::uint8_t> result;
};

struct error_body {
  errc code = errc::internal;
  std::string message;
};

struct code_request_body {
  object_id code;
  std::string symbol;  ///< used when `code` is nil (forward by symbol)
};

struct code_response_body {
  std::vector<std::uint8_t> blob;  ///< code_object::encode()
};

struct object_create_body {
  object_id id;
  std::uint64_t size = 0;
};

struct object_put_body {
  ref<void> at;
  std::vector<std::uint8_t> bytes;
};

struct object_get_body {
  ref<void> at;
  std::uint64_t length = 0;
};

struct object_remove_body {
  object_id id;
};

struct object_data_body {
  std::vector<std::uint8_t> bytes;
};

/// A part of a moving object's sealed image, source -> destination: the
/// image is `image_size` bytes and this part holds [offset, offset +
/// bytes.size()). An image travels as its parts in order (one part when it
/// is small), each answered with ack; the last part's answer says whether
/// the destination stored the whole image as pending (docs/mobility.md,
/// "Migration").
struct object_image_body {
  object_id id;                ///< the moving object (its image's header says it again)
  std::uint64_t image_size = 0;
  std::uint64_t offset = 0;
  std::vector<std::uint8_t> bytes;
};

struct dir_register_body {
  object_id id;
  node_index owner = kNoNode;
  /// How many times the object had moved when `owner` got it (its image's
  /// `moves` field): a cache never takes an owner older than the one it
  /// knows (directory/router.hpp). 0 in object_migrate requests.
  std::uint64_t version = 0;
};

struct empty_body {};

/// What every member reports with each heartbeat (clients send zeros): the
/// inputs automatic placement needs from a node, carried by traffic that
/// flows anyway (docs/mobility.md, "Placement").
struct load_body {
  std::uint32_t queued = 0;         ///< mobile calls waiting for an executor
  std::uint32_t running = 0;        ///< mobile calls running on executors
  std::uint32_t executors = 0;      ///< executor threads
  std::uint32_t call_us = 0;        ///< mean run time of its recent mobile calls, µs (0: none yet)
  std::uint32_t load_permille = 0;  ///< 1-minute load average per core, x1000
  std::uint64_t calls = 0;          ///< mobile calls run so far
  std::uint64_t pulled_calls = 0;   ///< calls placement sent here to run on pulled data
  std::uint64_t pulled_bytes = 0;   ///< bytes those calls pulled from other nodes
  std::uint32_t recompiling = 0;    ///< code objects its JIT is recompiling optimized in the background
};

/// ifunc_body::flags: register the message's code at the receiver (in the
/// origin context's scope) without running it.
inline constexpr std::uint8_t kIfuncInstall = 1;
/// ifunc_body::flags: the origin destroyed the context: drop its code and
/// state (no message).
inline constexpr std::uint8_t kIfuncClose = 2;

/// An ifunc message of <ferry/ifunc.h> (docs/ifunc.md, docs/protocol.md).
/// To a node: run it there (target_args: the bytes of `target`, if not
/// nil). To the origin client: queue it for its context's poll. A failure
/// a node met with a message goes back to the origin as an ifunc frame
/// with `failure` set and no message.
struct ifunc_body {
  node_index origin = kNoNode;  ///< the member whose context the message belongs to
  std::uint64_t context = 0;    ///< that context's id (its scope on every member)
  std::uint8_t flags = 0;       ///< kIfuncInstall, kIfuncClose
  ref<void> target;             ///< nil: target_args is NULL
  errc failure = errc::ok;      ///< a node's report to the origin; then `message` is empty
  std::string failure_message;
  std::vector<std::uint8_t> message;  ///< the wire/ifunc_frame image (header, payload, code, trailer)
};

using frame_body = std::variant<hello_body, invoke_body, reply_body, error_body, code_request_body, code_response_body,
                                object_create_body, object_put_body, object_get_body, object_remove_body,
                                object_data_body, empty_body, dir_register_body, load_body, ifunc_body,
                                object_image_body>;

struct frame {
  frame_type type = frame_type::heartbeat;
  node_index source = kNoNode;
  std::uint64_t call = 0;
  frame_body body = empty_body{};
};

/// Largest frame accepted (argument blocks, object data and code objects
/// travel in frames; larger objects are moved in pieces).
inline constexpr std::size_t kMaxFrame = std::size_t{256} << 20;
/// Most data bytes one object_get may ask for (its answer must fit a frame
/// with room to spare); a node answers a larger one with errc::too_large.
/// Clients move larger ranges in chunks (object_space::kChunk).
inline constexpr std::uint64_t kMaxObjectGet = std::uint64_t{64} << 20;

/// Encode; the body alternative must match the type (internal error otherwise).
std::vector<std::uint8_t> encode(const frame& f);
/// Encode into `into` (replacing its contents, reusing its capacity).
void encode_into(const frame& f, std::vector<std::uint8_t>& into);
/// Encode a frame whose body ends with its data bytes (object_put,
/// object_data, object_image) without those bytes: `into` gets every byte of the frame
/// up to them, with the lengths (the header's body length, the byte
/// string's prefix) counting `data_size` more, so that `into` followed by
/// the `data_size` data bytes is exactly what encode_into() writes for the
/// frame holding them. A sender passes the two parts to the transport as
/// they are (transport::send_parts(to, head, data)) instead of copying the data
/// into the frame and the frame into an encode buffer. Errors:
/// invalid_argument (another frame type, data already in the frame's body),
/// too_large (the frame would pass kMaxFrame).
status encode_head_into(const frame& f, std::size_t data_size, std::vector<std::uint8_t>& into);
/// The data bytes a bulk frame's body ends with (an object_put, object_data
/// or object_image frame's), or null for every other frame: the one place
/// that says which frames may travel as a head and their data.
std::vector<std::uint8_t>* data_bytes(frame& f);
const std::vector<std::uint8_t>* data_bytes(const frame& f);
/// Decode and validate an untrusted buffer.
result<frame> decode(std::span<const std::uint8_t> bytes);
/// The same, into `f`, reusing the strings and vectors it holds when the
/// body type repeats (a receive loop that decodes into one frame allocates
/// nothing once warm). With `data`, a frame that ends with its data bytes
/// (the frames data_bytes() names) is decoded without them: they stay in
/// `bytes`, *data views them there (valid as long as `bytes` is), and the
/// body's vector is left empty; *data is empty for every other frame. A
/// receiver that uses the data at once (a client copying a chunk of a get
/// into its caller's memory) saves copying it into the frame. On error `f`
/// (and *data) hold partial contents.
status decode_into(std::span<const std::uint8_t> bytes, frame& f, std::span<const std::uint8_t>* data = nullptr);

/// The clock invoke_body::deadline_us is read against: µs since the epoch
/// (CLOCK_REALTIME), so deadlines mean the same on every node.
std::uint64_t deadline_clock_us();

/// Both clocks a caller needs when it sends a call (the frame's deadline on
/// the deadline clock, its own wait's on the steady clock), from one clock
/// read: the deadline clock is the steady reading plus their difference,
/// which is read afresh once a second (a step of the wall clock shows within
/// a second; the steady clock's drift against it in a second is far below a
/// deadline's millisecond grain). A clock read is ~26 ns in a VM, on the
/// path of every call.
struct call_clocks {
  std::chrono::steady_clock::time_point steady;
  std::uint64_t deadline_us = 0;
};
call_clocks read_call_clocks();

/// The deadline clock as of the kernel's last tick (CLOCK_REALTIME_COARSE:
/// up to one tick, 1–10 ms, behind; ~4 ns instead of ~26 in a VM): for
/// checks that a tick's lateness does not hurt, such as refusing a call that
/// arrives past its deadline.
std::uint64_t coarse_deadline_clock_us();

/// Readable name of a frame type, for logs and errors.
const char* to_string(frame_type t) noexcept;

}  // namespace ferry::wire
