// The bare UCX baseline (raw_am.hpp).
#include "raw_am.hpp"

#include "common/raw_ucx.hpp"

namespace ferry::bench {
namespace {

constexpr unsigned kAmId = 7;

class raw_ucx final : public raw_am {
 public:
  result<void> init(const std::string& tls) {
    FERRY_TRY(w_, raw_worker::create(tls, UCP_FEATURE_AM));
    worker_ = w_->worker();
    FERRY_TRY(address_, w_->address());
    return w_->on_am(kAmId, &on_am, this);
  }

  std::vector<std::uint8_t> address() const override { return address_; }

  result<void> connect(std::span<const std::uint8_t> address) override {
    FERRY_TRY(ep_, w_->connect(address));
    return {};
  }

 protected:
  result<void> send_request(kind k, const void* data, std::size_t length) override {
    return send(ep_, k, data, length, true);
  }
  result<void> answer(std::uint64_t to) override {
    static const std::uint64_t kAnswer = 0x600d;
    return send(reinterpret_cast<ucp_ep_h>(to), kind::ping, &kAnswer, sizeof kAnswer, false);
  }
  unsigned progress() override { return ucp_worker_progress(worker_); }

 private:
  static ucs_status_t on_am(void* arg, const void* header, std::size_t header_length, void* data, std::size_t length,
                            const ucp_am_recv_param_t* param) {
    auto* s = static_cast<raw_ucx*>(arg);
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {  // an answer (client side)
      ++s->answers_;
      return UCS_OK;
    }
    if (header_length == 1 && *static_cast<const std::uint8_t*>(header) == static_cast<std::uint8_t>(kind::stop))
      s->stop_ = true;
    const auto reply = reinterpret_cast<std::uint64_t>(param->reply_ep);
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
      // Large message: pull it in (that is the cost being measured), then answer.
      s->scratch_.resize(length);
      struct done_ctx {
        raw_ucx* s;
        std::uint64_t reply;
      };
      auto* d = new done_ctx{s, reply};
      ucp_request_param_t rp{};
      rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
      rp.user_data = d;
      rp.cb.recv_am = [](void* request, ucs_status_t, std::size_t, void* user) {
        auto* d = static_cast<done_ctx*>(user);
        d->s->to_answer_.push_back(d->reply);
        delete d;
        ucp_request_free(request);
      };
      const ucs_status_ptr_t r = ucp_am_recv_data_nbx(s->worker_, data, s->scratch_.data(), length, &rp);
      if (r == nullptr || UCS_PTR_IS_ERR(r)) {
        s->to_answer_.push_back(reply);
        delete d;
      }
      return UCS_OK;
    }
    s->to_answer_.push_back(reply);
    return UCS_OK;
  }

  result<void> send(ucp_ep_h to, kind k, const void* data, std::size_t length, bool want_reply) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_FLAGS;
    rp.cb.send = &free_ucx_request;
    rp.flags = want_reply ? UCP_AM_SEND_FLAG_REPLY : 0;
    static const std::uint8_t kinds[2] = {static_cast<std::uint8_t>(kind::ping), static_cast<std::uint8_t>(kind::stop)};
    const ucs_status_ptr_t r =
        ucp_am_send_nbx(to, kAmId, &kinds[static_cast<int>(k)], 1, data, length, &rp);
    if (UCS_PTR_IS_ERR(r)) return ucx_error("am send", UCS_PTR_STATUS(r));
    return {};
  }

  std::unique_ptr<raw_worker> w_;
  ucp_worker_h worker_ = nullptr;
  ucp_ep_h ep_ = nullptr;  // client: the server
  std::vector<std::uint8_t> address_;
  std::vector<std::uint8_t> scratch_;
};

}  // namespace

result<std::unique_ptr<raw_am>> make_raw_ucx(const std::string& tls) {
  auto r = std::make_unique<raw_ucx>();
  FERRY_TRY_STATUS(r->init(tls));
  return std::unique_ptr<raw_am>(std::move(r));
}

}  // namespace ferry::bench
