// The bare-UCX pieces every benchmark baseline shares (`ferry bench invoke`,
// the pointer chase's `am` and `get` modes): one context and one
// single-threaded worker with the requested transports, its address, and
// endpoints to peers. No ferry code runs on a baseline's path: these are
// plain UCP calls (setup and teardown shared with ferry's UCX transport:
// transport/ucx_setup.hpp), so a baseline measures UCX alone.
#pragma once

#include <poll.h>
#include <ucp/api/ucp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/status.hpp>

#include "transport/ucx_setup.hpp"

namespace ferry::bench {

inline status ucx_error(std::string_view what, ucs_status_t s) { return transport::ucx::error(what, s); }

/// Completion callback of fire-and-forget requests.
inline void free_ucx_request(void* request, ucs_status_t, void*) { ucp_request_free(request); }

/// A UCP context and one single-threaded worker.
class raw_worker {
 public:
  /// `tls`: UCX transports ("shm", "tcp"; empty: UCX's choice).
  /// `features`: UCP_FEATURE_* (AM, RMA...).
  static result<std::unique_ptr<raw_worker>> create(const std::string& tls, std::uint64_t features) {
    std::unique_ptr<raw_worker> w(new raw_worker());
    FERRY_TRY(w->ctx_, transport::ucx::init_context(tls, features));
    FERRY_TRY(w->worker_, transport::ucx::create_worker(w->ctx_, UCS_THREAD_MODE_SINGLE));
    return w;
  }

  raw_worker(const raw_worker&) = delete;
  raw_worker& operator=(const raw_worker&) = delete;
  ~raw_worker() {
    for (ucp_ep_h ep : eps_) transport::ucx::close_endpoint(worker_, ep);
    if (worker_) ucp_worker_destroy(worker_);
    if (ctx_) ucp_cleanup(ctx_);
  }

  [[nodiscard]] ucp_context_h context() const { return ctx_; }
  [[nodiscard]] ucp_worker_h worker() const { return worker_; }

  /// The worker's address, for a peer's connect().
  [[nodiscard]] result<std::vector<std::uint8_t>> address() const { return transport::ucx::worker_address(worker_); }

  /// An endpoint to the worker at `address`; closed with this worker.
  result<ucp_ep_h> connect(std::span<const std::uint8_t> address) {
    FERRY_TRY(const ucp_ep_h h, transport::ucx::create_endpoint(worker_, address));
    eps_.push_back(h);
    return h;
  }

  /// Install the one AM handler for `id` (whole messages).
  result<void> on_am(unsigned id, ucp_am_recv_callback_t cb, void* arg) {
    return transport::ucx::set_am_handler(worker_, id, cb, arg);
  }

  unsigned progress() { return ucp_worker_progress(worker_); }

  /// Block until the worker has an event or `timeout_ms` passes (the context
  /// needs UCP_FEATURE_WAKEUP). Returns at once when events are pending.
  result<void> wait(int timeout_ms) {
    int efd = -1;
    if (auto s = ucp_worker_get_efd(worker_, &efd); s != UCS_OK) return ucx_error("wakeup fd", s);
    const ucs_status_t armed = ucp_worker_arm(worker_);
    if (armed == UCS_ERR_BUSY) return {};
    if (armed != UCS_OK) return ucx_error("arm", armed);
    pollfd fd{efd, POLLIN, 0};
    (void)::poll(&fd, 1, timeout_ms);
    return {};
  }

 private:
  raw_worker() = default;

  ucp_context_h ctx_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::vector<ucp_ep_h> eps_;
};

}  // namespace ferry::bench
