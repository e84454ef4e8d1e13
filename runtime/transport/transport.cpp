// Backend selection, the one place that knows every transport kind; and
// what every backend shares (a frame sent in two parts, joined).
#include "transport.hpp"

#include <fmt/format.h>

namespace ferry::transport {

result<std::unique_ptr<transport>> make_ucx_transport(const options& opts);
result<std::unique_ptr<transport>> make_ofi_transport(const options& opts);
result<std::unique_ptr<transport>> make_inproc_transport();
result<std::unique_ptr<transport>> make_shaped_transport(std::unique_ptr<transport> inner,
                                                         const options::link_profile& link);

std::vector<std::uint8_t> tag_address(std::string_view backend, std::span<const std::uint8_t> raw) {
  std::vector<std::uint8_t> out;
  out.reserve(1 + backend.size() + raw.size());
  out.push_back(static_cast<std::uint8_t>(backend.size()));
  out.insert(out.end(), backend.begin(), backend.end());
  out.insert(out.end(), raw.begin(), raw.end());
  return out;
}

result<std::span<const std::uint8_t>> untag_address(std::string_view backend,
                                                    std::span<const std::uint8_t> address) {
  if (address.empty() || address.size() < 1u + address[0])
    return make_error(errc::bad_format, fmt::format("a transport address of {} bytes names no backend", address.size()));
  const std::string_view named(reinterpret_cast<const char*>(address.data() + 1), address[0]);
  if (named != backend)
    return make_error(errc::bad_format,
                      fmt::format("an address of transport '{}' given to transport '{}' (every process of a cluster "
                                  "must use the same transport and provider)",
                                  named, backend));
  return address.subspan(1 + address[0]);
}

namespace {
result<std::unique_ptr<transport>> make_backend(const options& opts) {
  if (opts.kind == "ucx") return make_ucx_transport(opts);
  if (opts.kind == "ofi") return make_ofi_transport(opts);
  if (opts.kind == "inproc") return make_inproc_transport();
  return make_error(errc::unsupported, fmt::format("unknown transport '{}' (choose ucx, ofi or inproc)", opts.kind));
}
}  // namespace

result<void> transport::send_parts(peer_index to, std::span<const std::uint8_t> head,
                                   std::span<const std::uint8_t> data) {
  if (data.empty()) return send(to, head);
  // One buffer per thread, kept warm (up to kReusedFrameBytes); a send that
  // runs a handler which sends in two parts again joins into its own.
  thread_local std::vector<std::uint8_t> kept;
  thread_local bool in_use = false;
  std::vector<std::uint8_t> own;
  auto& joined = in_use ? own : kept;
  const bool outer = !in_use;
  in_use = true;
  joined.assign(head.begin(), head.end());
  joined.insert(joined.end(), data.begin(), data.end());
  auto sent = send(to, joined);
  if (outer) {
    in_use = false;
    if (kept.capacity() > kReusedFrameBytes) std::vector<std::uint8_t>().swap(kept);
  }
  return sent;
}

result<std::unique_ptr<transport>> transport::create(const options& opts) {
  FERRY_TRY(auto backend, make_backend(opts));
  if (!opts.link.shaped()) return backend;
  return make_shaped_transport(std::move(backend), opts.link);
}

}  // namespace ferry::transport
