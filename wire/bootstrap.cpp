// Host-list bootstrap exchange, version 1 (specification: docs/protocol.md).
#include "bootstrap.hpp"

#include <fmt/format.h>

#include "codec.hpp"

namespace ferry::wire {
namespace {

constexpr std::size_t kMaxMessageText = 4096;

void put_header(writer& w, bootstrap_ask ask) {
  w.put(kBootstrapMagic);
  w.put(kBootstrapVersion);
  w.put(static_cast<std::uint8_t>(ask));
}

status get_header(reader& r, bootstrap_ask& ask) {
  const auto magic = r.get<std::uint16_t>();
  const auto v = r.get<std::uint8_t>();
  const auto a = r.get<std::uint8_t>();
  if (!r.ok()) return make_error(errc::bad_format, "bootstrap message shorter than its header");
  if (magic != kBootstrapMagic)
    return make_error(errc::bad_format, "not a ferry bootstrap message (bad magic): is this port a ferry node's?");
  if (v != kBootstrapVersion)
    return make_error(errc::bad_version, fmt::format("bootstrap version {} (this build speaks {})", v, kBootstrapVersion));
  if (a != static_cast<std::uint8_t>(bootstrap_ask::address) && a != static_cast<std::uint8_t>(bootstrap_ask::member_index))
    return make_error(errc::bad_format, fmt::format("unknown bootstrap ask {}", a));
  ask = static_cast<bootstrap_ask>(a);
  return {};
}

status check_end(const reader& r, const char* what) {
  if (!r.ok() || r.remaining() != 0) return make_error(errc::bad_format, fmt::format("malformed bootstrap {}", what));
  return {};
}

}  // namespace

std::vector<std::uint8_t> encode(const bootstrap_request& q) {
  writer w;
  put_header(w, q.ask);
  w.put(q.nodes);
  return std::move(w.bytes());
}

std::vector<std::uint8_t> encode(const bootstrap_answer& a) {
  writer w;
  put_header(w, a.ask);
  w.put(static_cast<std::uint16_t>(a.code));
  w.put(a.nodes);
  w.put(a.index);
  put_blob(w, a.address);
  w.put_string(a.message);
  return std::move(w.bytes());
}

result<bootstrap_request> decode_bootstrap_request(std::span<const std::uint8_t> bytes) {
  reader r(bytes);
  bootstrap_request q;
  if (auto s = get_header(r, q.ask); !s.ok()) return s;
  q.nodes = r.get<std::uint32_t>();
  if (auto s = check_end(r, "request"); !s.ok()) return s;
  return q;
}

result<bootstrap_answer> decode_bootstrap_answer(std::span<const std::uint8_t> bytes) {
  reader r(bytes);
  bootstrap_answer a;
  if (auto s = get_header(r, a.ask); !s.ok()) return s;
  const auto code = r.get<std::uint16_t>();
  if (code > static_cast<std::uint16_t>(errc_last)) r.fail();  // unknown kind
  a.code = static_cast<errc>(code);
  a.nodes = r.get<std::uint32_t>();
  a.index = r.get<node_index>();
  a.address = get_blob(r);
  a.message = r.get_string(kMaxMessageText);
  if (auto s = check_end(r, "answer"); !s.ok()) return s;
  return a;
}

}  // namespace ferry::wire
