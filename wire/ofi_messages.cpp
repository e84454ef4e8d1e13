#include "ofi_messages.hpp"

#include <cstring>

#include <fmt/format.h>

#include "codec.hpp"
#include "frames.hpp"

namespace ferry::wire::ofi {

void put_header(std::uint8_t* out, kind k) {
  out[0] = kVersion;
  out[1] = static_cast<std::uint8_t>(k);
  out[2] = 0;
  out[3] = 0;
}

result<kind> read_header(std::span<const std::uint8_t> message) {
  if (message.size() < kHeaderSize)
    return make_error(errc::bad_format, fmt::format("ofi message of {} bytes", message.size()));
  if (message[0] != kVersion)
    return make_error(errc::bad_version, fmt::format("ofi message version {} (this build speaks {})", message[0], kVersion));
  if (message[1] < 1 || message[1] > 3 || message[2] != 0 || message[3] != 0)
    return make_error(errc::bad_format, fmt::format("ofi message of kind {}", message[1]));
  return static_cast<kind>(message[1]);
}

void encode(const rendezvous& r, std::vector<std::uint8_t>& out) {
  writer w(out);
  w.put(kVersion);
  w.put(static_cast<std::uint8_t>(kind::rendezvous));
  w.put(std::uint16_t{0});
  w.put(r.token);
  w.put(r.length);
  w.put(r.address);
  w.put(r.key);
  w.put(static_cast<std::uint32_t>(r.sender.size()));
  w.put_bytes(r.sender);
}

result<rendezvous> decode_rendezvous(std::span<const std::uint8_t> message) {
  FERRY_TRY(const kind k, read_header(message));
  if (k != kind::rendezvous) return make_error(errc::bad_format, "not an ofi rendezvous message");
  reader rd(message.subspan(kHeaderSize));
  rendezvous r;
  r.token = rd.get<std::uint64_t>();
  r.length = rd.get<std::uint64_t>();
  r.address = rd.get<std::uint64_t>();
  r.key = rd.get<std::uint64_t>();
  const auto n = rd.get<std::uint32_t>();
  if (n == 0 || n > kMaxAddress) rd.fail();
  const auto sender = rd.get_bytes(n);
  if (!rd.ok() || rd.remaining() != 0 || r.length == 0 || r.length > kMaxFrame)
    return make_error(errc::bad_format, "malformed ofi rendezvous message");
  r.sender.assign(sender.begin(), sender.end());
  return r;
}

void put_rendezvous_done(std::uint8_t* out, std::uint64_t token) {
  put_header(out, kind::rendezvous_done);
  std::memcpy(out + kHeaderSize, &token, 8);
}

result<std::uint64_t> decode_rendezvous_done(std::span<const std::uint8_t> message) {
  FERRY_TRY(const kind k, read_header(message));
  if (k != kind::rendezvous_done || message.size() != kRendezvousDoneSize)
    return make_error(errc::bad_format, "malformed ofi rendezvous_done message");
  std::uint64_t token;
  std::memcpy(&token, message.data() + kHeaderSize, 8);
  return token;
}

}  // namespace ferry::wire::ofi
