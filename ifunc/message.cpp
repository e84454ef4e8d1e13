#include "ifunc/message.hpp"

#include <sys/random.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include <fmt/format.h>

#include "ifunc/library.hpp"
#include "wire/ifunc_frame.hpp"

namespace ferry::ifunc {
namespace {

constexpr std::size_t kAlign = 64;

// Lives right before a message's short image, in the same allocation.
struct message_state {
  std::shared_ptr<entry> fn;
  wire::ifunc_header short_header;
  std::mutex mu;
  std::vector<std::uint8_t> full;  // the full image, built on first use
};
constexpr std::size_t kStateSize = (sizeof(message_state) + kAlign - 1) / kAlign * kAlign;

message_state& state_of(void* frame) {
  return *std::launder(reinterpret_cast<message_state*>(static_cast<std::uint8_t*>(frame) - kStateSize));
}

std::uint64_t fresh_nonce() {
  std::uint64_t n = 0;
  while (n == 0)
    if (::getrandom(&n, sizeof n, 0) != sizeof n) n = 0;
  return n;
}

bool always_send_code() {
  static const bool always = [] {
    const char* v = std::getenv("FERRY_IFUNC_SEND_CODE");
    return v && std::string_view(v) == "always";
  }();
  return always;
}

// The full image, 8-aligned for its trailer: header, payload, code, trailer.
// Written in place over the previous one: a put of it may still be reading
// (a flush has not completed it), and it then reads the same bytes, or the
// payload the user just changed, as a short send would.
const std::vector<std::uint8_t>& full_image(message_state& s, const void* frame) {
  wire::ifunc_header h = s.short_header;
  h.code_attached = true;
  h.code_size = s.fn->code_section.size();
  if (s.full.size() != h.frame_size()) s.full.assign(h.frame_size(), 0);
  wire::encode_ifunc_header(h, std::span<std::uint8_t, wire::kIfuncHeaderSize>(s.full.data(), wire::kIfuncHeaderSize));
  std::memcpy(s.full.data() + wire::kIfuncHeaderSize,
              static_cast<const std::uint8_t*>(frame) + wire::kIfuncHeaderSize, h.payload_size);
  std::memcpy(s.full.data() + wire::kIfuncHeaderSize + h.payload_size, s.fn->code_section.data(), h.code_size);
  std::memcpy(s.full.data() + h.trailer_offset(), &h.nonce, sizeof h.nonce);
  return s.full;
}

}  // namespace

result<built_message> create_message(std::shared_ptr<entry> fn, void* source_args, std::size_t source_args_size) {
  const std::size_t bound = fn->payload_bound(source_args, source_args_size);
  wire::ifunc_header h;
  h.key = fn->key;
  h.payload_size = bound;
  h.nonce = fresh_nonce();
  if (bound > (std::size_t{1} << 48))
    return make_error(errc::out_of_memory, fmt::format("{}_payload_bound asked for {} bytes", fn->name, bound));
  const std::size_t image = h.frame_size();
  auto* block = static_cast<std::uint8_t*>(std::aligned_alloc(kAlign, (kStateSize + image + kAlign - 1) / kAlign * kAlign));
  if (!block) return make_error(errc::out_of_memory, fmt::format("ifunc {}: {} bytes of message", fn->name, image));
  std::uint8_t* frame = block + kStateSize;
  std::memset(frame, 0, image);  // the prototype's calloc: the payload starts zeroed
  std::size_t payload_size = bound;
  if (const int rc = fn->payload_init(source_args, source_args_size, frame + wire::kIfuncHeaderSize, &payload_size);
      rc != 0) {
    std::free(block);
    return make_error(errc::cancelled, fmt::format("{}_payload_init returned {}", fn->name, rc));
  }
  if (payload_size > bound) {
    std::free(block);
    return make_error(errc::out_of_bounds, fmt::format("{}_payload_init reports {} payload bytes, more than the {} of "
                                                       "{}_payload_bound",
                                                       fn->name, payload_size, bound, fn->name));
  }
  h.payload_size = payload_size;
  wire::encode_ifunc_header(h, std::span<std::uint8_t, wire::kIfuncHeaderSize>(frame, wire::kIfuncHeaderSize));
  wire::write_ifunc_trailer(frame, h);
  auto* s = new (block) message_state{};
  s->short_header = h;
  const std::size_t full_size = [&] {
    wire::ifunc_header f = h;
    f.code_attached = true;
    f.code_size = fn->code_section.size();
    return f.frame_size();
  }();
  s->fn = std::move(fn);
  return built_message{frame, full_size};
}

result<std::pair<void*, std::size_t>> payload_of(void* frame) {
  if (!frame) return make_error(errc::invalid_argument, "no ifunc message");
  return std::pair{static_cast<void*>(static_cast<std::uint8_t*>(frame) + wire::kIfuncHeaderSize),
                   static_cast<std::size_t>(state_of(frame).short_header.payload_size)};
}

void free_message(void* frame) {
  if (!frame) return;
  state_of(frame).~message_state();
  std::free(static_cast<std::uint8_t*>(frame) - kStateSize);
}

entry* ifunc_of(void* frame) { return state_of(frame).fn.get(); }

std::span<const std::uint8_t> image_for(void* frame, std::uint64_t peer) {
  message_state& s = state_of(frame);
  if (s.fn->first_send_to(peer) || always_send_code()) {
    std::lock_guard lock(s.mu);
    const auto& full = full_image(s, frame);
    return {full.data(), full.size()};
  }
  return {static_cast<const std::uint8_t*>(frame), s.short_header.frame_size()};
}

result<std::optional<taken_message>> take_message(registry& reg, scope owner, const linking& how, void* buffer,
                                                  std::size_t buffer_size) {
  auto arrived = wire::read_ifunc_message(buffer, buffer_size);
  if (!arrived) return arrived.error();
  if (!*arrived) return std::nullopt;
  const wire::ifunc_arrival& m = **arrived;
  std::shared_ptr<entry> fn = reg.find(owner, m.header.key);
  if (!fn && m.header.code_attached) {
    auto code = wire::decode_ifunc_code(m.code);
    status refused;
    if (!code) refused = code.error();
    else if (key_of(*code) != m.header.key) refused = make_error(errc::corrupt, "ifunc message: code does not match its key");
    else if (auto added = reg.add(owner, std::move(*code), how); added) fn = std::move(*added);
    else refused = added.error();
    if (!fn) {
      wire::ifunc_clear_signal(buffer, m.header);
      return refused;
    }
  }
  wire::ifunc_clear_signal(buffer, m.header);
  if (!fn)
    return make_error(errc::unknown_code, fmt::format("ifunc message for code {} that this process does not have "
                                                      "(never registered, or deregistered) and that came without it",
                                                      m.header.key.short_string()));
  return taken_message{std::move(fn), m.payload.data(), m.payload.size()};
}

}  // namespace ferry::ifunc
