#include "ucx_setup.hpp"

#include <fmt/format.h>

namespace ferry::transport::ucx {

status error(std::string_view what, ucs_status_t s) {
  return make_error(errc::io_error, fmt::format("UCX {}: {}", what, ucs_status_string(s)));
}

result<ucp_context_h> init_context(const std::string& tls, std::uint64_t features) {
  ucp_config_t* config = nullptr;
  if (auto s = ucp_config_read(nullptr, nullptr, &config); s != UCS_OK) return error("config", s);
  if (!tls.empty()) {
    if (auto s = ucp_config_modify(config, "TLS", tls.c_str()); s != UCS_OK) {
      ucp_config_release(config);
      return error(fmt::format("TLS={}", tls), s);
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = features;
  ucp_context_h ctx = nullptr;
  const auto s = ucp_init(&params, config, &ctx);
  ucp_config_release(config);
  if (s != UCS_OK) return error(tls.empty() ? std::string("init") : fmt::format("init with TLS={}", tls), s);
  return ctx;
}

result<ucp_worker_h> create_worker(ucp_context_h ctx, ucs_thread_mode_t mode) {
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = mode;
  ucp_worker_h worker = nullptr;
  if (auto s = ucp_worker_create(ctx, &wp, &worker); s != UCS_OK) return error("worker create", s);
  return worker;
}

result<std::vector<std::uint8_t>> worker_address(ucp_worker_h worker) {
  ucp_address_t* addr = nullptr;
  std::size_t len = 0;
  if (auto s = ucp_worker_get_address(worker, &addr, &len); s != UCS_OK) return error("worker address", s);
  std::vector<std::uint8_t> out(reinterpret_cast<const std::uint8_t*>(addr),
                                reinterpret_cast<const std::uint8_t*>(addr) + len);
  ucp_worker_release_address(worker, addr);
  return out;
}

result<ucp_ep_h> create_endpoint(ucp_worker_h worker, std::span<const std::uint8_t> address) {
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  ep.address = reinterpret_cast<const ucp_address_t*>(address.data());
  ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
  ucp_ep_h h = nullptr;
  if (auto s = ucp_ep_create(worker, &ep, &h); s != UCS_OK) return error("endpoint create", s);
  return h;
}

result<void> set_am_handler(ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t cb, void* arg) {
  ucp_am_handler_param_t hp{};
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                  UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  hp.id = id;
  hp.cb = cb;
  hp.arg = arg;
  hp.flags = UCP_AM_FLAG_WHOLE_MSG;
  if (auto s = ucp_worker_set_am_recv_handler(worker, &hp); s != UCS_OK) return error("AM handler", s);
  return {};
}

void close_endpoint(ucp_worker_h worker, ucp_ep_h ep) {
  ucp_request_param_t rp{};
  rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  rp.flags = UCP_EP_CLOSE_FLAG_FORCE;
  const ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &rp);
  if (r == nullptr || UCS_PTR_IS_ERR(r)) return;
  for (int i = 0; i < 100000 && ucp_request_check_status(r) == UCS_INPROGRESS; ++i) ucp_worker_progress(worker);
  ucp_request_free(r);
}

}  // namespace ferry::transport::ucx
