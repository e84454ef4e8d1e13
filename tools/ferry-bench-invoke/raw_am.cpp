#include "raw_am.hpp"

#include "common/raw_ucx.hpp"

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

}  // namespace

struct raw_am::state {
  std::unique_ptr<raw_worker> w;
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
    rp.cb.send = &free_ucx_request;
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
  FERRY_TRY(s.w, raw_worker::create(tls, UCP_FEATURE_AM));
  s.worker = s.w->worker();
  FERRY_TRY(s.address, s.w->address());
  FERRY_TRY_STATUS(s.w->on_am(kAmId, &state::on_am, &s));
  return r;
}

raw_am::~raw_am() = default;

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
  FERRY_TRY(s_->ep, s_->w->connect(address));
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
