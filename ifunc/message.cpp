#include "ifunc/message.hpp"

#include <sys/random.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ifunc/library.hpp"
#include "wire/ifunc_frame.hpp"

namespace ferry::ifunc {
namespace {

constexpr std::size_t kAlign = 64;

// Lives right before a message's short image, in the same allocation.
struct message_state {
  std::size_t block_bytes = 0;  // the allocation it heads, state included
  std::shared_ptr<entry> fn;
  wire::ifunc_header short_header;
  std::mutex mu;
  std::vector<std::uint8_t> full;  // the full image, built on first use
};
constexpr std::size_t kStateSize = (sizeof(message_state) + kAlign - 1) / kAlign * kAlign;

message_state& state_of(void* frame) {
  return *std::launder(reinterpret_cast<message_state*>(static_cast<std::uint8_t*>(frame) - kStateSize));
}

// A message's nonce: a random start per thread (one getrandom), then a
// counter through a bijective mix (murmur3's 64-bit finalizer), so no two
// messages a thread builds share one, and no system call per message: a
// getrandom cost 0.2-1.2 us here, on every hop of an ifunc chase.
std::uint64_t fresh_nonce() {
  thread_local std::uint64_t counter = [] {
    std::uint64_t seed = 0;
    while (::getrandom(&seed, sizeof seed, 0) != sizeof seed) {
    }
    return seed;
  }();
  for (;;) {
    std::uint64_t z = (counter += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 33)) * 0xff51afd7ed558ccd;
    z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53;
    z ^= z >> 33;
    if (z != 0) return z;
  }
}

// One freed message block per thread, kept for the next message it builds
// (a chase hop builds and frees one per hop): blocks up to 64 KiB.
constexpr std::size_t kKeptBlockBytes = 64 * 1024;
struct kept_block {
  void* block = nullptr;
  std::size_t bytes = 0;
  kept_block() = default;
  kept_block(const kept_block&) = delete;
  kept_block& operator=(const kept_block&) = delete;
  ~kept_block() {
    std::free(block);
    block = nullptr;
  }
};
thread_local kept_block kept;

void* take_block(std::size_t bytes, std::size_t& got) {
  if (kept.block && kept.bytes >= bytes) {
    got = kept.bytes;
    return std::exchange(kept.block, nullptr);
  }
  got = bytes;
  return std::aligned_alloc(kAlign, bytes);
}

void give_back_block(void* block, std::size_t bytes) {
  if (bytes > kKeptBlockBytes || (kept.block && kept.bytes >= bytes)) return std::free(block);
  std::free(kept.block);
  kept.block = block;
  kept.bytes = bytes;
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
  std::size_t block_bytes = 0;
  auto* block = static_cast<std::uint8_t*>(take_block((kStateSize + image + kAlign - 1) / kAlign * kAlign, block_bytes));
  if (!block) return make_error(errc::out_of_memory, fmt::format("ifunc {}: {} bytes of message", fn->name, image));
  std::uint8_t* frame = block + kStateSize;
  std::memset(frame, 0, image);  // the prototype's calloc: the payload starts zeroed
  std::size_t payload_size = bound;
  if (const int rc = fn->payload_init(source_args, source_args_size, frame + wire::kIfuncHeaderSize, &payload_size);
      rc != 0) {
    give_back_block(block, block_bytes);
    return make_error(errc::cancelled, fmt::format("{}_payload_init returned {}", fn->name, rc));
  }
  if (payload_size > bound) {
    give_back_block(block, block_bytes);
    return make_error(errc::out_of_bounds, fmt::format("{}_payload_init reports {} payload bytes, more than the {} of "
                                                       "{}_payload_bound",
                                                       fn->name, payload_size, bound, fn->name));
  }
  h.payload_size = payload_size;
  wire::encode_ifunc_header(h, std::span<std::uint8_t, wire::kIfuncHeaderSize>(frame, wire::kIfuncHeaderSize));
  wire::write_ifunc_trailer(frame, h);
  auto* s = new (block) message_state{};
  s->block_bytes = block_bytes;
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
  const std::size_t bytes = state_of(frame).block_bytes;
  state_of(frame).~message_state();
  give_back_block(static_cast<std::uint8_t*>(frame) - kStateSize, bytes);
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
                                                  std::size_t buffer_size, std::shared_ptr<entry> found) {
  auto arrived = wire::read_ifunc_message(buffer, buffer_size);
  if (!arrived) return arrived.error();
  if (!*arrived) return std::nullopt;
  const wire::ifunc_arrival& m = **arrived;
  std::shared_ptr<entry> fn = found && found->key == m.header.key ? std::move(found) : reg.find(owner, m.header.key);
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
