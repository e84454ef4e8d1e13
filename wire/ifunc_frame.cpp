#include "ifunc_frame.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "codec.hpp"

namespace ferry::wire {
namespace {

constexpr std::uint8_t kFlagCode = 1;
constexpr std::uint32_t kMaxDeps = 1024;
// Header fields: magic u32 | version u8 | flags u8 | reserved u16 | key 16 |
// payload size u64 | code size u64 | nonce u64 | reserved (pads to 64 bytes).
constexpr std::size_t kHeaderFields = 4 + 1 + 1 + 2 + 16 + 8 + 8 + 8;
static_assert(kHeaderFields <= kIfuncHeaderSize);

// Buffers are at least 8-aligned (mapped memory; trailer offsets are 8-aligned).
std::atomic_ref<std::uint32_t> magic_of(const void* buffer) {
  return std::atomic_ref<std::uint32_t>(*static_cast<std::uint32_t*>(const_cast<void*>(buffer)));
}
std::atomic_ref<std::uint64_t> trailer_of(const void* buffer, const ifunc_header& h) {
  auto* at = static_cast<std::uint8_t*>(const_cast<void*>(buffer)) + h.trailer_offset();
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(at));
}

}  // namespace

void encode_ifunc_header(const ifunc_header& h, std::span<std::uint8_t, kIfuncHeaderSize> out) {
  // Straight into `out` (48 bytes of fields, then the reserved bytes as
  // 0): every message built, at every hop, writes one.
  std::memset(out.data(), 0, kIfuncHeaderSize);
  span_writer w(out);
  w.put(kIfuncMagic);
  w.put(kIfuncVersion);
  w.put(static_cast<std::uint8_t>(h.code_attached ? kFlagCode : 0));
  w.put(std::uint16_t{0});
  w.put(h.key.hi);
  w.put(h.key.lo);
  w.put(h.payload_size);
  w.put(h.code_attached ? h.code_size : std::uint64_t{0});
  w.put(h.nonce);
}

result<ifunc_header> decode_ifunc_header(std::span<const std::uint8_t, kIfuncHeaderSize> in) {
  reader r{std::span<const std::uint8_t>(in)};
  if (r.get<std::uint32_t>() != kIfuncMagic) return make_error(errc::bad_format, "ifunc message: no magic");
  if (const auto v = r.get<std::uint8_t>(); v != kIfuncVersion)
    return make_error(errc::bad_version, fmt::format("ifunc message version {} (this build reads {})", v, kIfuncVersion));
  const auto flags = r.get<std::uint8_t>();
  const auto reserved = r.get<std::uint16_t>();
  ifunc_header h;
  h.code_attached = (flags & kFlagCode) != 0;
  h.key.hi = r.get<std::uint64_t>();
  h.key.lo = r.get<std::uint64_t>();
  h.payload_size = r.get<std::uint64_t>();
  h.code_size = r.get<std::uint64_t>();
  h.nonce = r.get<std::uint64_t>();
  const auto pad = r.get_bytes(kIfuncHeaderSize - kHeaderFields);
  const bool pad_clear = std::all_of(pad.begin(), pad.end(), [](std::uint8_t b) { return b == 0; });
  if (!r.ok() || (flags & ~kFlagCode) != 0 || reserved != 0 || !pad_clear)
    return make_error(errc::bad_format, "ifunc message: malformed header");
  if (h.nonce == 0) return make_error(errc::bad_format, "ifunc message: nonce 0");
  if (!h.code_attached && h.code_size != 0)
    return make_error(errc::bad_format, "ifunc message: a code size without code");
  constexpr std::uint64_t limit = std::uint64_t{1} << 62;  // frame_size() cannot overflow below this
  if (h.payload_size >= limit || h.code_size >= limit)
    return make_error(errc::too_large, "ifunc message: sizes out of range");
  return h;
}

bool ifunc_signal_present(const void* buffer) {
  return magic_of(buffer).load(std::memory_order_acquire) == kIfuncMagic;
}

bool ifunc_trailer_present(const void* buffer, const ifunc_header& h) {
  return trailer_of(buffer, h).load(std::memory_order_acquire) == h.nonce;
}

void ifunc_clear_signal(void* buffer, const ifunc_header& h) {
  trailer_of(buffer, h).store(0, std::memory_order_relaxed);
  magic_of(buffer).store(0, std::memory_order_release);
}

void ifunc_clear_magic(void* buffer) { magic_of(buffer).store(0, std::memory_order_release); }

void write_ifunc_trailer(void* frame, const ifunc_header& h) { trailer_of(frame, h).store(h.nonce); }

result<std::optional<ifunc_arrival>> read_ifunc_message(void* buffer, std::size_t buffer_size) {
  if (!buffer || buffer_size < kIfuncHeaderSize + 8 || reinterpret_cast<std::uintptr_t>(buffer) % 8 != 0)
    return make_error(errc::invalid_argument, fmt::format("an ifunc buffer must be 8-aligned and hold at least {} bytes",
                                                          kIfuncHeaderSize + 8));
  if (!ifunc_signal_present(buffer)) return std::nullopt;
  auto* bytes = static_cast<std::uint8_t*>(buffer);
  auto h = decode_ifunc_header(std::span<const std::uint8_t, kIfuncHeaderSize>(bytes, kIfuncHeaderSize));
  if (!h) {
    ifunc_clear_magic(buffer);
    return h.error();
  }
  if (h->frame_size() > buffer_size) {
    ifunc_clear_magic(buffer);  // its trailer lies outside the buffer
    return make_error(errc::too_large, fmt::format("ifunc message of {} bytes does not fit the {}-byte buffer",
                                                   h->frame_size(), buffer_size));
  }
  if (!ifunc_trailer_present(buffer, *h)) return std::nullopt;
  std::uint8_t* payload = bytes + kIfuncHeaderSize;
  return ifunc_arrival{*h, {payload, h->payload_size}, {payload + h->payload_size, h->code_size}};
}

std::vector<std::uint8_t> encode_ifunc_code(const ifunc_code& c) {
  writer w;
  w.put_string(c.name);
  w.put(static_cast<std::uint8_t>(c.pure ? 1 : 0));
  w.put(static_cast<std::uint32_t>(c.deps.size()));
  for (const auto& d : c.deps) w.put_string(d);
  put_blob(w, c.code.encode());
  return std::move(w.bytes());
}

result<ifunc_code> decode_ifunc_code(std::span<const std::uint8_t> bytes) {
  reader r(bytes);
  ifunc_code c;
  c.name = r.get_string();
  const auto pure = r.get<std::uint8_t>();
  const auto n = r.get<std::uint32_t>();
  if (!r.ok() || pure > 1 || n > kMaxDeps || c.name.empty())
    return make_error(errc::bad_format, "ifunc code section: malformed");
  c.pure = pure == 1;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) c.deps.push_back(r.get_string());
  const auto blob = get_blob(r);
  if (!r.ok() || r.remaining() != 0) return make_error(errc::bad_format, "ifunc code section: malformed");
  auto code = code_object::decode(blob);
  if (!code) return code.error();
  c.code = std::move(*code);
  return c;
}

}  // namespace ferry::wire
