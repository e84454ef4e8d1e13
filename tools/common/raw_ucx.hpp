// The bare-UCX pieces every benchmark baseline shares (`ferry bench invoke`,
// the pointer chase's `am` and `get` modes): one context and one
// single-threaded worker with the requested transports, its address, and
// endpoints to peers. No ferry code runs on a baseline's path: these are
// plain UCP calls, so a baseline measures UCX alone.
#pragma once

#include <ucp/api/ucp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <ferry/status.hpp>

namespace ferry::bench {

inline status ucx_error(std::string_view what, ucs_status_t s) {
  return make_error(errc::io_error, fmt::format("UCX {}: {}", what, ucs_status_string(s)));
}

/// Completion callback of fire-and-forget requests.
inline void free_ucx_request(void* request, ucs_status_t, void*) { ucp_request_free(request); }

/// A UCP context and one single-threaded worker.
class raw_worker {
 public:
  /// `tls`: UCX transports ("shm", "tcp"; empty: UCX's choice).
  /// `features`: UCP_FEATURE_* (AM, RMA...).
  static result<std::unique_ptr<raw_worker>> create(const std::string& tls, std::uint64_t features) {
    std::unique_ptr<raw_worker> w(new raw_worker());
    ucp_config_t* config = nullptr;
    if (auto st = ucp_config_read(nullptr, nullptr, &config); st != UCS_OK) return ucx_error("config", st);
    if (!tls.empty()) ucp_config_modify(config, "TLS", tls.c_str());
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = features;
    const auto st = ucp_init(&params, config, &w->ctx_);
    ucp_config_release(config);
    if (st != UCS_OK) return ucx_error("init", st);
    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    if (auto ws = ucp_worker_create(w->ctx_, &wp, &w->worker_); ws != UCS_OK) return ucx_error("worker create", ws);
    return w;
  }

  raw_worker(const raw_worker&) = delete;
  raw_worker& operator=(const raw_worker&) = delete;
  ~raw_worker() {
    for (ucp_ep_h ep : eps_) close(ep);
    if (worker_) ucp_worker_destroy(worker_);
    if (ctx_) ucp_cleanup(ctx_);
  }

  [[nodiscard]] ucp_context_h context() const { return ctx_; }
  [[nodiscard]] ucp_worker_h worker() const { return worker_; }

  /// The worker's address, for a peer's connect().
  [[nodiscard]] result<std::vector<std::uint8_t>> address() const {
    ucp_address_t* addr = nullptr;
    std::size_t len = 0;
    if (auto st = ucp_worker_get_address(worker_, &addr, &len); st != UCS_OK) return ucx_error("worker address", st);
    std::vector<std::uint8_t> out(reinterpret_cast<std::uint8_t*>(addr), reinterpret_cast<std::uint8_t*>(addr) + len);
    ucp_worker_release_address(worker_, addr);
    return out;
  }

  /// An endpoint to the worker at `address`; closed with this worker.
  result<ucp_ep_h> connect(std::span<const std::uint8_t> address) {
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    ep.address = reinterpret_cast<const ucp_address_t*>(address.data());
    ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    ucp_ep_h h = nullptr;
    if (auto st = ucp_ep_create(worker_, &ep, &h); st != UCS_OK) return ucx_error("endpoint create", st);
    eps_.push_back(h);
    return h;
  }

  /// Install the one AM handler for `id` (whole messages).
  result<void> on_am(unsigned id, ucp_am_recv_callback_t cb, void* arg) {
    ucp_am_handler_param_t hp{};
    hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                    UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    hp.id = id;
    hp.cb = cb;
    hp.arg = arg;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG;
    if (auto st = ucp_worker_set_am_recv_handler(worker_, &hp); st != UCS_OK) return ucx_error("AM handler", st);
    return {};
  }

  unsigned progress() { return ucp_worker_progress(worker_); }

 private:
  raw_worker() = default;
  void close(ucp_ep_h ep) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    rp.flags = UCP_EP_CLOSE_FLAG_FORCE;
    const ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &rp);
    if (r == nullptr || UCS_PTR_IS_ERR(r)) return;
    for (int i = 0; i < 100000 && ucp_request_check_status(r) == UCS_INPROGRESS; ++i) ucp_worker_progress(worker_);
    ucp_request_free(r);
  }

  ucp_context_h ctx_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::vector<ucp_ep_h> eps_;
};

}  // namespace ferry::bench
