// Runtime protocol frames, version 1 (specification: docs/protocol.md).
#include "frames.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <limits>

#include <fmt/format.h>

#include "codec.hpp"

namespace ferry::wire {
namespace {

constexpr std::size_t kMaxString = 1 << 16;

template <class W>
void put_id(W& w, object_id id) {
  w.put(id.hi);
  w.put(id.lo);
}
object_id get_id(reader& r) {
  object_id id;
  id.hi = r.get<std::uint64_t>();
  id.lo = r.get<std::uint64_t>();
  return id;
}
template <class W>
void put_ref(W& w, ref<void> at) {
  put_id(w, at.id);
  w.put(at.offset);
}
ref<void> get_ref(reader& r) {
  ref<void> at;
  at.id = get_id(r);
  at.offset = r.get<std::uint64_t>();
  return at;
}

// The body alternative each frame type carries.
std::size_t body_index(frame_type t) {
  switch (t) {
    case frame_type::hello: return 0;
    case frame_type::invoke: return 1;
    case frame_type::reply: return 2;
    case frame_type::error: return 3;
    case frame_type::code_request: return 4;
    case frame_type::code_response: return 5;
    case frame_type::object_create: return 6;
    case frame_type::object_put: return 7;
    case frame_type::object_get: return 8;
    case frame_type::object_remove:
    case frame_type::dir_lookup: return 9;
    case frame_type::object_data:
    case frame_type::echo: return 10;
    case frame_type::object_image: return 15;
    case frame_type::ack:
    case frame_type::shutdown: return 11;
    case frame_type::heartbeat: return 13;
    case frame_type::ifunc: return 14;
    case frame_type::dir_register:
    case frame_type::object_migrate:
    case frame_type::object_commit:
    case frame_type::object_abort:
    case frame_type::object_move_query: return 12;
  }
  return std::variant_npos;
}

// A message as frames carry it: at most kMaxString - 1 bytes.
std::string_view capped(std::string_view message) { return message.substr(0, kMaxString - 1); }

// Each body's fields in order: sized with a sizer, written with a span_writer.
template <class W>
struct body_writer {
  W& w;
  void operator()(const hello_body& b) {
    w.put(b.index);
    w.put(b.kind);
    w.put_string(b.triple);
    w.put_string(b.cpu);
    put_blob(w, b.address);
  }
  void operator()(const invoke_body& b) {
    put_id(w, b.code);
    w.put_string(b.symbol);
    w.put(b.signature_hash);
    w.put(b.origin);
    w.put(b.origin_call);
    w.put(b.code_holder);
    w.put(b.deadline_us);
    w.put(b.hops);
    w.put(b.flags);
    put_ref(w, b.target);
    put_blob(w, b.args);
    put_blob(w, b.code_blob);
  }
  void operator()(const reply_body& b) { put_blob(w, b.result); }
  void operator()(const error_body& b) {
    w.put(static_cast<std::uint16_t>(b.code));
    w.put_string(capped(b.message));
  }
  void operator()(const code_request_body& b) {
    put_id(w, b.code);
    w.put_string(b.symbol);
  }
  void operator()(const code_response_body& b) { put_blob(w, b.blob); }
  void operator()(const object_create_body& b) {
    put_id(w, b.id);
    w.put(b.size);
  }
  void operator()(const object_put_body& b) {
    put_ref(w, b.at);
    put_blob(w, b.bytes);
  }
  void operator()(const object_get_body& b) {
    put_ref(w, b.at);
    w.put(b.length);
  }
  void operator()(const object_remove_body& b) { put_id(w, b.id); }
  void operator()(const object_data_body& b) { put_blob(w, b.bytes); }
  void operator()(const empty_body&) {}
  void operator()(const dir_register_body& b) {
    put_id(w, b.id);
    w.put(b.owner);
    w.put(b.version);
  }
  void operator()(const load_body& b) {
    w.put(b.queued);
    w.put(b.running);
    w.put(b.executors);
    w.put(b.call_us);
    w.put(b.load_permille);
    w.put(b.calls);
    w.put(b.pulled_calls);
    w.put(b.pulled_bytes);
    w.put(b.recompiling);
  }
  void operator()(const ifunc_body& b) {
    w.put(b.origin);
    w.put(b.context);
    w.put(b.flags);
    put_ref(w, b.target);
    w.put(static_cast<std::uint16_t>(b.failure));
    w.put_string(capped(b.failure_message));
    put_blob(w, b.message);
  }
  void operator()(const object_image_body& b) {
    put_id(w, b.id);
    w.put(b.image_size);
    w.put(b.offset);
    put_blob(w, b.bytes);
  }
};

// The body alternative I of `body`, reused when it already holds it (its
// strings and vectors keep their capacity: decoding into a frame that is
// reused allocates nothing once it has grown).
template <std::size_t I>
auto& hold(frame_body& body) {
  if (body.index() != I) body.emplace<I>();
  return std::get<I>(body);
}

void read_string(reader& r, std::string& out) {
  const auto n = r.get<std::uint32_t>();
  const auto b = n <= kMaxString ? r.get_bytes(n) : (r.fail(), std::span<const std::uint8_t>{});
  out.assign(reinterpret_cast<const char*>(b.data()), b.size());
}
void read_blob(reader& r, std::vector<std::uint8_t>& out) {
  const auto n = r.get<std::uint64_t>();
  if (n > r.remaining()) {
    r.fail();  // checked before allocating: n is untrusted
    out.clear();
    return;
  }
  const auto b = r.get_bytes(n);
  out.assign(b.begin(), b.end());
}

// A bulk frame's data bytes: copied into `out`, or with `view`, left where
// they are (*view), `out` emptied.
void read_data(reader& r, std::vector<std::uint8_t>& out, std::span<const std::uint8_t>* view) {
  if (view == nullptr) return read_blob(r, out);
  out.clear();
  const auto n = r.get<std::uint64_t>();
  if (n > r.remaining()) return r.fail();
  *view = r.get_bytes(n);
}

// `data`: the data bytes' view for a frame that ends with them
// (decode_into()), else null.
void read_body(std::size_t index, reader& r, frame_body& body, std::span<const std::uint8_t>* data) {
  switch (index) {
    case 0: {
      auto& b = hold<0>(body);
      b.index = r.get<node_index>();
      b.kind = r.get<std::uint8_t>();
      read_string(r, b.triple);
      read_string(r, b.cpu);
      read_blob(r, b.address);
      return;
    }
    case 1: {
      auto& b = hold<1>(body);
      b.code = get_id(r);
      read_string(r, b.symbol);
      b.signature_hash = r.get<std::uint64_t>();
      b.origin = r.get<node_index>();
      b.origin_call = r.get<std::uint64_t>();
      b.code_holder = r.get<node_index>();
      b.deadline_us = r.get<std::uint64_t>();
      b.hops = r.get<std::uint16_t>();
      b.flags = r.get<std::uint8_t>();
      if (b.flags & ~(kInvokePinned | kInvokePull | kInvokeLoadOnly | kInvokeOptimize)) r.fail();  // unknown flags
      if ((b.flags & kInvokeOptimize) && !(b.flags & kInvokeLoadOnly)) r.fail();  // only a preload asks for a tier
      b.target = get_ref(r);
      read_blob(r, b.args);
      read_blob(r, b.code_blob);
      return;
    }
    case 2: return read_blob(r, hold<2>(body).result);
    case 3: {
      auto& b = hold<3>(body);
      const auto code = r.get<std::uint16_t>();
      if (code < 1 || code > static_cast<std::uint16_t>(errc_last)) r.fail();  // unknown kind
      b.code = static_cast<errc>(code);
      read_string(r, b.message);
      return;
    }
    case 4: {
      auto& b = hold<4>(body);
      b.code = get_id(r);
      read_string(r, b.symbol);
      return;
    }
    case 5: return read_blob(r, hold<5>(body).blob);
    case 6: {
      auto& b = hold<6>(body);
      b.id = get_id(r);
      b.size = r.get<std::uint64_t>();
      return;
    }
    case 7: {
      auto& b = hold<7>(body);
      b.at = get_ref(r);
      read_data(r, b.bytes, data);
      return;
    }
    case 8: {
      auto& b = hold<8>(body);
      b.at = get_ref(r);
      b.length = r.get<std::uint64_t>();
      return;
    }
    case 9: hold<9>(body).id = get_id(r); return;
    case 10: return read_data(r, hold<10>(body).bytes, data);
    case 12: {
      auto& b = hold<12>(body);
      b.id = get_id(r);
      b.owner = r.get<node_index>();
      b.version = r.get<std::uint64_t>();
      return;
    }
    case 13: {
      auto& b = hold<13>(body);
      b.queued = r.get<std::uint32_t>();
      b.running = r.get<std::uint32_t>();
      b.executors = r.get<std::uint32_t>();
      b.call_us = r.get<std::uint32_t>();
      b.load_permille = r.get<std::uint32_t>();
      b.calls = r.get<std::uint64_t>();
      b.pulled_calls = r.get<std::uint64_t>();
      b.pulled_bytes = r.get<std::uint64_t>();
      b.recompiling = r.get<std::uint32_t>();
      return;
    }
    case 14: {
      auto& b = hold<14>(body);
      b.origin = r.get<node_index>();
      b.context = r.get<std::uint64_t>();
      b.flags = r.get<std::uint8_t>();
      if (b.flags & ~(kIfuncInstall | kIfuncClose)) r.fail();  // unknown flags
      b.target = get_ref(r);
      const auto code = r.get<std::uint16_t>();
      if (code > static_cast<std::uint16_t>(errc_last)) r.fail();  // unknown kind
      b.failure = static_cast<errc>(code);
      read_string(r, b.failure_message);
      read_blob(r, b.message);
      return;
    }
    case 15: {
      auto& b = hold<15>(body);
      b.id = get_id(r);
      b.image_size = r.get<std::uint64_t>();
      b.offset = r.get<std::uint64_t>();
      read_data(r, b.bytes, data);
      return;
    }
    default: hold<11>(body); return;
  }
}

// The header, then the body: the one definition of a frame's layout.
template <class W>
void put_frame(W& w, const frame& f, std::uint32_t body_length) {
  w.put(kFrameMagic);
  w.put(kProtocolVersion);
  w.put(static_cast<std::uint8_t>(f.type));
  w.put(f.source);
  w.put(f.call);
  w.put(body_length);
  std::visit(body_writer<W>{w}, f.body);
}

}  // namespace

std::vector<std::uint8_t> encode(const frame& f) {
  std::vector<std::uint8_t> out;
  encode_into(f, out);
  return out;
}

void encode_into(const frame& f, std::vector<std::uint8_t>& into) {
  sizer size;  // the whole frame, header included: one layout, measured the way it is written
  put_frame(size, f, 0);
  into.resize(size.size());
  span_writer w(into);
  put_frame(w, f, static_cast<std::uint32_t>(size.size() - kFrameHeaderSize));
}

namespace {
// The frames whose body ends with their data bytes, which may travel apart
// from the frame's head (encode_head_into()) and be decoded in place
// (decode_into() with a view).
bool ends_with_data(frame_type t) {
  return t == frame_type::object_put || t == frame_type::object_data || t == frame_type::object_image;
}
}  // namespace

std::vector<std::uint8_t>* data_bytes(frame& f) {
  if (!ends_with_data(f.type)) return nullptr;
  if (auto* put = std::get_if<object_put_body>(&f.body)) return &put->bytes;
  if (auto* answer = std::get_if<object_data_body>(&f.body)) return &answer->bytes;
  if (auto* part = std::get_if<object_image_body>(&f.body)) return &part->bytes;
  return nullptr;
}

const std::vector<std::uint8_t>* data_bytes(const frame& f) { return data_bytes(const_cast<frame&>(f)); }

status encode_head_into(const frame& f, std::size_t data_size, std::vector<std::uint8_t>& into) {
  const auto* data = data_bytes(f);  // the body's last field
  if (data == nullptr)
    return make_error(errc::invalid_argument,
                      fmt::format("a {} frame does not end with its data bytes (only object_put, object_data and object_image do)",
                                  to_string(f.type)));
  if (!data->empty())
    return make_error(errc::invalid_argument, "the frame already holds data bytes: they would travel twice");
  encode_into(f, into);  // the data's length prefix (0) ends it
  if (data_size > kMaxFrame - into.size())
    return make_error(errc::too_large, fmt::format("a frame of {} bytes of data passes the largest frame ({} bytes)",
                                                   data_size, kMaxFrame));
  // Both lengths in place, little-endian as codec.hpp writes them: the
  // header's u32 body length, and the data's u64 prefix, which ends the head.
  const auto add = [&]<class U>(std::size_t at, U) {
    U v;
    std::memcpy(&v, into.data() + at, sizeof v);
    v += static_cast<U>(data_size);
    std::memcpy(into.data() + at, &v, sizeof v);
  };
  add(kFrameHeaderSize - sizeof(std::uint32_t), std::uint32_t{});
  add(into.size() - sizeof(std::uint64_t), std::uint64_t{});
  return {};
}

result<frame> decode(std::span<const std::uint8_t> bytes) {
  frame f;
  if (auto s = decode_into(bytes, f); !s.ok()) return s;
  return f;
}

status decode_into(std::span<const std::uint8_t> bytes, frame& f, std::span<const std::uint8_t>* data) {
  if (data != nullptr) *data = {};
  if (bytes.size() < kFrameHeaderSize)
    return make_error(errc::bad_format, fmt::format("frame of {} bytes is shorter than its header", bytes.size()));
  if (bytes.size() > kMaxFrame) return make_error(errc::bad_format, fmt::format("frame of {} bytes", bytes.size()));
  reader r(bytes);
  if (r.get<std::uint16_t>() != kFrameMagic) return make_error(errc::bad_format, "not a ferry frame (bad magic)");
  if (const auto v = r.get<std::uint8_t>(); v != kProtocolVersion)
    return make_error(errc::bad_version, fmt::format("protocol version {} (this node speaks {})", v, kProtocolVersion));
  const auto type = r.get<std::uint8_t>();
  f.type = static_cast<frame_type>(type);
  f.source = r.get<node_index>();
  f.call = r.get<std::uint64_t>();
  const auto body_len = r.get<std::uint32_t>();
  const auto index = body_index(f.type);
  if (index == std::variant_npos) return make_error(errc::bad_format, fmt::format("unknown frame type {}", type));
  if (body_len != bytes.size() - kFrameHeaderSize)
    return make_error(errc::bad_format, fmt::format("{} frame: body length {} but {} bytes follow the header",
                                                    to_string(f.type), body_len, bytes.size() - kFrameHeaderSize));
  read_body(index, r, f.body, ends_with_data(f.type) ? data : nullptr);
  if (!r.ok() || r.remaining() != 0)
    return make_error(errc::bad_format, fmt::format("{} frame: body fields do not match its length", to_string(f.type)));
  return {};
}

std::uint64_t deadline_clock_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

namespace {
// The deadline clock minus the steady clock (µs), and when (steady µs) it
// was read. Any thread may refresh them; relaxed is enough: a reader that
// sees one pair's offset with the other's time uses a valid offset anyway.
std::atomic<std::int64_t> deadline_minus_steady_us{0};
std::atomic<std::int64_t> offset_read_at_us{std::numeric_limits<std::int64_t>::min() / 2};
constexpr std::int64_t kReadOffsetEveryUs = 1'000'000;
}  // namespace

call_clocks read_call_clocks() {
  const auto steady = std::chrono::steady_clock::now();
  const std::int64_t steady_us =
      std::chrono::duration_cast<std::chrono::microseconds>(steady.time_since_epoch()).count();
  std::int64_t offset = deadline_minus_steady_us.load(std::memory_order_relaxed);
  if (steady_us - offset_read_at_us.load(std::memory_order_relaxed) >= kReadOffsetEveryUs) {
    offset = static_cast<std::int64_t>(deadline_clock_us()) - steady_us;
    deadline_minus_steady_us.store(offset, std::memory_order_relaxed);
    offset_read_at_us.store(steady_us, std::memory_order_relaxed);
  }
  return {steady, static_cast<std::uint64_t>(steady_us + offset)};
}

std::uint64_t coarse_deadline_clock_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

const char* to_string(frame_type t) noexcept {
  switch (t) {
    case frame_type::hello: return "hello";
    case frame_type::invoke: return "invoke";
    case frame_type::reply: return "reply";
    case frame_type::error: return "error";
    case frame_type::code_request: return "code_request";
    case frame_type::code_response: return "code_response";
    case frame_type::object_create: return "object_create";
    case frame_type::object_put: return "object_put";
    case frame_type::object_get: return "object_get";
    case frame_type::object_remove: return "object_remove";
    case frame_type::object_data: return "object_data";
    case frame_type::ack: return "ack";
    case frame_type::heartbeat: return "heartbeat";
    case frame_type::shutdown: return "shutdown";
    case frame_type::echo: return "echo";
    case frame_type::dir_register: return "dir_register";
    case frame_type::object_migrate: return "object_migrate";
    case frame_type::object_image: return "object_image";
    case frame_type::dir_lookup: return "dir_lookup";
    case frame_type::ifunc: return "ifunc";
    case frame_type::object_commit: return "object_commit";
    case frame_type::object_abort: return "object_abort";
    case frame_type::object_move_query: return "object_move_query";
  }
  return "unknown";
}

}  // namespace ferry::wire
