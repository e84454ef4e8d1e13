// The real transports the multi-process suites run over, as doctest template
// parameters: a test case named "... <ofi_shm>" runs over libfabric's shm
// provider (docs/transports.md, "Tests over each transport").
#pragma once

#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <ferry/runtime.hpp>

#include "transport/transport.hpp"

namespace rt_test {

struct ucx_shm {
  static ferry::transport::options options() { return {.kind = "ucx", .tls = "shm", .provider = {}, .link = {}}; }
};
struct ucx_tcp {
  static ferry::transport::options options() { return {.kind = "ucx", .tls = "tcp", .provider = {}, .link = {}}; }
};
struct ofi_tcp {
  static ferry::transport::options options() { return {.kind = "ofi", .tls = {}, .provider = "tcp;ofi_rxm", .link = {}}; }
};
struct ofi_shm {
  static ferry::transport::options options() { return {.kind = "ofi", .tls = {}, .provider = "shm", .link = {}}; }
};

/// `ferry node` arguments that select `t`.
inline std::vector<std::string> node_transport_args(const ferry::transport::options& t) {
  std::vector<std::string> args{"--transport", t.kind};
  if (!t.tls.empty()) args.insert(args.end(), {"--tls", t.tls});
  if (!t.provider.empty()) args.insert(args.end(), {"--provider", t.provider});
  return args;
}

/// A client's options that select `t`.
inline void select_transport(ferry::runtime_options& o, const ferry::transport::options& t) {
  o.transport = t.kind;
  o.tls = t.tls;
  o.provider = t.provider;
}

/// What node_info::transport says for `t`.
inline std::string transport_name(const ferry::transport::options& t) {
  return t.kind + "/" + (t.kind == "ucx" ? t.tls : t.provider);
}

}  // namespace rt_test

TYPE_TO_STRING_AS("ucx_shm", rt_test::ucx_shm);
TYPE_TO_STRING_AS("ucx_tcp", rt_test::ucx_tcp);
TYPE_TO_STRING_AS("ofi_tcp", rt_test::ofi_tcp);
TYPE_TO_STRING_AS("ofi_shm", rt_test::ofi_shm);
