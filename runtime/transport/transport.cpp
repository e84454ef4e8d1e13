// Backend selection: the one place that knows every transport kind.
#include "transport.hpp"

#include <fmt/format.h>

namespace ferry::transport {

result<std::unique_ptr<transport>> make_ucx_transport(const options& opts);
result<std::unique_ptr<transport>> make_inproc_transport();
result<std::unique_ptr<transport>> make_shaped_transport(std::unique_ptr<transport> inner,
                                                         const options::link_profile& link);

namespace {
result<std::unique_ptr<transport>> make_backend(const options& opts) {
  if (opts.kind == "ucx") return make_ucx_transport(opts);
  if (opts.kind == "inproc") return make_inproc_transport();
  return make_error(errc::unsupported, fmt::format("unknown transport '{}' (choose ucx or inproc)", opts.kind));
}
}  // namespace

result<std::unique_ptr<transport>> transport::create(const options& opts) {
  FERRY_TRY(auto backend, make_backend(opts));
  if (!opts.link.shaped()) return backend;
  return make_shaped_transport(std::move(backend), opts.link);
}

}  // namespace ferry::transport
