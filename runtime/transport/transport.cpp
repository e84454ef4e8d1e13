// Backend selection: the one place that knows every transport kind.
#include "transport.hpp"

#include <fmt/format.h>

namespace ferry::transport {

result<std::unique_ptr<transport>> make_ucx_transport(const options& opts);
result<std::unique_ptr<transport>> make_ofi_transport(const options& opts);
result<std::unique_ptr<transport>> make_inproc_transport();

result<std::unique_ptr<transport>> transport::create(const options& opts) {
  if (opts.kind == "ucx") return make_ucx_transport(opts);
  if (opts.kind == "ofi") return make_ofi_transport(opts);
  if (opts.kind == "inproc") return make_inproc_transport();
  return make_error(errc::unsupported, fmt::format("unknown transport '{}' (choose ucx, ofi or inproc)", opts.kind));
}

}  // namespace ferry::transport
