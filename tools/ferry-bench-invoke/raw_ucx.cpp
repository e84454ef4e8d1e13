#include "raw_am.hpp"

#include <ucp/api/ucp.h>

#include <algorithm>
#include <chrono>
#include <deque>

#include <fmt/format.h>

namespace ferry::bench {
namespace {

constexpr unsigned kAmId = 7;
constexpr std::uint8_t kPing = 0;
constexpr std::uint8_t kStop = 1;
constexpr std::uint64_t kAnswer = 0x600d;
constexpr auto kWaitLimit = std::chrono::seconds(20);

status ucx_error(std::string_view what, ucs_status_t s) {
  return make_error(errc::io_error, fmt::format("UCX {}: {}", what, ucs_status_string(s)));
}

void free_request(void* request, ucs_status_t, void*) { ucp_request_free(request); }

}  // namespace

struct raw_am::state {
  ucp_context_h ctx = nullptr;
  ucp_worker_h worker = nullptr;
  ucp_ep_h ep = nullptr;  // client: the server
  std::vector<std::uint8_t> address;
  // Client.
  std::uint64_t answers = 0;
  std::vector<std::uint8_t> payload;
  // Server.
  std::deque<ucp_ep_h> to_answer;
  std::vector<std::uint8_t> scratch;
  bool stop = false;

  static ucs_status_t on_am(void* arg, const void* header, std::size_t header_length, void* data, std::size_t length,
                            const ucp_am_recv_param_t* param) {
    auto* s = static_cast<state*>(arg);
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {  // an answer (client side)
      ++s->answers;
      return UCS_OK;
    }
    if (header_length == 1 && *static_cast<const std::uint8_t*>(header) == kStop) s->stop = true;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
      // Large message: pull it in (that is the cost being measured), then answer.
      s->scratch.resize(length);
      struct done_ctx {
        state* s;
        ucp_ep_h reply;
      };
      auto* d = new done_ctx{s, param->reply_ep};
      ucp_request_param_t rp{};
      rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
      rp.user_data = d;
      rp.cb.recv_am = [](void* request, ucs_status_t, std::size_t, void* user) {
        auto* d = static_cast<done_ctx*>(user);
        d->s->to_answer.push_back(d->reply);
        delete d;
        ucp_request_free(request);
      };
      const ucs_status_ptr_t r = ucp_am_recv_data_nbx(s->worker, data, s->scratch.data(), length, &rp);
      if (r == nullptr || UCS_PTR_IS_ERR(r)) {
        s->to_answer.push_back(param->reply_ep);
        delete d;
      }
      return UCS_OK;
    }
    s->to_answer.push_back(param->reply_ep);
    return UCS_OK;
  }

  result<void> send(ucp_ep_h to, std::uint8_t kind, const void* data, std::size_t length, bool want_reply) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_FLAGS;
    rp.cb.send = &free_request;
    rp.flags = want_reply ? UCP_AM_SEND_FLAG_REPLY : 0;
    static std::uint8_t kinds[2] = {kPing, kStop};
    const ucs_status_ptr_t r = ucp_am_send_nbx(to, kAmId, &kinds[kind], 1, data, length, &rp);
    if (UCS_PTR_IS_ERR(r)) return ucx_error("am send", UCS_PTR_STATUS(r));
    return {};
  }

  // Progress until `answers` reaches `target` (bounded in time).
  result<void> wait_answers(std::uint64_t target) {
    const auto limit = std::chrono::steady_clock::now() + kWaitLimit;
    unsigned spins = 0;
    while (answers < target) {
      ucp_worker_progress(worker);
      if (++spins % 4096 == 0 && std::chrono::steady_clock::now() > limit)
        return make_error(errc::timeout, "the raw UCX peer stopped answering");
    }
    return {};
  }
};

result<std::unique_ptr<raw_am>> raw_am::create(const std::string& tls) {
  std::unique_ptr<raw_am> r(new raw_am());
  r->s_ = std::make_unique<state>();
  auto& s = *r->s_;
  ucp_config_t* config = nullptr;
  if (auto st = ucp_config_read(nullptr, nullptr, &config); st != UCS_OK) return ucx_error("config", st);
  if (!tls.empty()) ucp_config_modify(config, "TLS", tls.c_str());
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_AM;
  const auto st = ucp_init(&params, config, &s.ctx);
  ucp_config_release(config);
  if (st != UCS_OK) return ucx_error("init", st);
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SINGLE;
  if (auto ws = ucp_worker_create(s.ctx, &wp, &s.worker); ws != UCS_OK) return ucx_error("worker create", ws);
  ucp_address_t* addr = nullptr;
  std::size_t len = 0;
  if (auto as = ucp_worker_get_address(s.worker, &addr, &len); as != UCS_OK) return ucx_error("worker address", as);
  s.address.assign(reinterpret_cast<std::uint8_t*>(addr), reinterpret_cast<std::uint8_t*>(addr) + len);
  ucp_worker_release_address(s.worker, addr);
  ucp_am_handler_param_t hp{};
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                  UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  hp.id = kAmId;
  hp.cb = &state::on_am;
  hp.arg = &s;
  hp.flags = UCP_AM_FLAG_WHOLE_MSG;
  if (auto hs = ucp_worker_set_am_recv_handler(s.worker, &hp); hs != UCS_OK) return ucx_error("AM handler", hs);
  return r;
}

raw_am::~raw_am() {
  if (!s_) return;
  if (s_->ep) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    rp.flags = UCP_EP_CLOSE_FLAG_FORCE;
    const ucs_status_ptr_t r = ucp_ep_close_nbx(s_->ep, &rp);
    if (r != nullptr && !UCS_PTR_IS_ERR(r)) {
      for (int i = 0; i < 100000 && ucp_request_check_status(r) == UCS_INPROGRESS; ++i) ucp_worker_progress(s_->worker);
      ucp_request_free(r);
    }
  }
  if (s_->worker) ucp_worker_destroy(s_->worker);
  if (s_->ctx) ucp_cleanup(s_->ctx);
}

std::vector<std::uint8_t> raw_am::address() const { return s_->address; }

result<void> raw_am::serve(int idle_timeout_ms) {
  auto& s = *s_;
  static const std::uint64_t answer = kAnswer;
  auto last = std::chrono::steady_clock::now();
  unsigned spins = 0;
  while (!s.stop || !s.to_answer.empty()) {
    if (ucp_worker_progress(s.worker) != 0) last = std::chrono::steady_clock::now();
    while (!s.to_answer.empty()) {
      FERRY_TRY_STATUS(s.send(s.to_answer.front(), kPing, &answer, sizeof answer, false));
      s.to_answer.pop_front();
    }
    if (++spins % 4096 == 0 && std::chrono::steady_clock::now() - last > std::chrono::milliseconds(idle_timeout_ms))
      return make_error(errc::timeout, fmt::format("no message from the bench client for {} ms", idle_timeout_ms));
  }
  // Let the last answers leave before the worker goes.
  for (int i = 0; i < 10000; ++i) ucp_worker_progress(s.worker);
  return {};
}

result<void> raw_am::connect(std::span<const std::uint8_t> address) {
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  ep.address = reinterpret_cast<const ucp_address_t*>(address.data());
  ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
  if (auto st = ucp_ep_create(s_->worker, &ep, &s_->ep); st != UCS_OK) return ucx_error("endpoint create", st);
  return {};
}

result<double> raw_am::round_trip_us(std::size_t payload, int iterations, int batches) {
  auto& s = *s_;
  s.payload.assign(std::max<std::size_t>(payload, 1), 0x5a);
  std::vector<double> per_batch;
  for (int b = -1; b < batches; ++b) {  // batch -1 warms up
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
      FERRY_TRY_STATUS(s.send(s.ep, kPing, s.payload.data(), payload, true));
      FERRY_TRY_STATUS(s.wait_answers(s.answers + 1));
    }
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (b >= 0) per_batch.push_back(us / iterations);
  }
  std::sort(per_batch.begin(), per_batch.end());
  return per_batch[per_batch.size() / 2];
}

result<double> raw_am::rate(int window, int total) {
  auto& s = *s_;
  s.payload.assign(8, 0x5a);
  const std::uint64_t base = s.answers;
  const auto t0 = std::chrono::steady_clock::now();
  const auto limit = t0 + kWaitLimit;
  unsigned spins = 0;
  for (int sent = 0; sent < total;) {
    if (++spins % 4096 == 0 && std::chrono::steady_clock::now() > limit)
      return make_error(errc::timeout, "the raw UCX peer stopped answering");
    while (sent < total && static_cast<std::int64_t>(sent) - static_cast<std::int64_t>(s.answers - base) < window) {
      FERRY_TRY_STATUS(s.send(s.ep, kPing, s.payload.data(), 8, true));
      ++sent;
    }
    ucp_worker_progress(s.worker);
  }
  FERRY_TRY_STATUS(s.wait_answers(base + total));
  return total / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

result<void> raw_am::stop() {
  auto& s = *s_;
  static const std::uint64_t bye = 0;
  FERRY_TRY_STATUS(s.send(s.ep, kStop, &bye, sizeof bye, true));
  return s.wait_answers(s.answers + 1);
}

}  // namespace ferry::bench
