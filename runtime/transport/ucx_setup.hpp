// The UCP calls every UCX user in ferry makes the same way: a context with
// the requested transports, a worker, its address, endpoints by address, the
// AM handler, and a forced endpoint close. Used by ferry's UCX transport
// (ucx.cpp) and by the bare-UCX benchmark baselines (tools/common/raw_ucx.hpp),
// which must run plain UCP and nothing of ferry's on their measured path:
// these are setup and teardown only.
#pragma once

#include <ucp/api/ucp.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::transport::ucx {

/// io_error "UCX <what>: <UCX's words for s>".
status error(std::string_view what, ucs_status_t s);

/// ucp_init with `features` (UCP_FEATURE_*); `tls` ("shm", "tcp", ...; empty:
/// UCX's choice) overrides UCX_TLS. Errors: io_error naming the TLS.
result<ucp_context_h> init_context(const std::string& tls, std::uint64_t features);

/// A worker of `ctx` in `mode`.
result<ucp_worker_h> create_worker(ucp_context_h ctx, ucs_thread_mode_t mode);

/// The worker's address bytes, for a peer's create_endpoint().
result<std::vector<std::uint8_t>> worker_address(ucp_worker_h worker);

/// An endpoint to the worker at `address` (no error handling: see
/// docs/transports.md on why).
result<ucp_ep_h> create_endpoint(ucp_worker_h worker, std::span<const std::uint8_t> address);

/// Install the handler of AM `id`, receiving whole messages.
result<void> set_am_handler(ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t cb, void* arg);

/// Close `ep` at once (forced), progressing `worker` a bounded number of
/// times for the close to finish.
void close_endpoint(ucp_worker_h worker, ucp_ep_h ep);

}  // namespace ferry::transport::ucx
