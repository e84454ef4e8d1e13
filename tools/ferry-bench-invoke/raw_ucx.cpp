// The bare UCX baseline (raw_am.hpp).
#include <ucp/api/ucp.h>

#include <fmt/format.h>

#include "raw_am.hpp"

namespace ferry::bench {
namespace {

constexpr unsigned kAmId = 7;

status ucx_error(std::string_view what, ucs_status_t s) {
  return make_error(errc::io_error, fmt::format("UCX {}: {}", what, ucs_status_string(s)));
}

void free_request(void* request, ucs_status_t, void*) { ucp_request_free(request); }

class raw_ucx final : public raw_am {
 public:
  ~raw_ucx() override {
    if (ep_) {
      ucp_request_param_t rp{};
      rp.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      rp.flags = UCP_EP_CLOSE_FLAG_FORCE;
      const ucs_status_ptr_t r = ucp_ep_close_nbx(ep_, &rp);
      if (r != nullptr && !UCS_PTR_IS_ERR(r)) {
        for (int i = 0; i < 100000 && ucp_request_check_status(r) == UCS_INPROGRESS; ++i) ucp_worker_progress(worker_);
        ucp_request_free(r);
      }
    }
    if (worker_) ucp_worker_destroy(worker_);
    if (ctx_) ucp_cleanup(ctx_);
  }

  result<void> init(const std::string& tls) {
    ucp_config_t* config = nullptr;
    if (auto st = ucp_config_read(nullptr, nullptr, &config); st != UCS_OK) return ucx_error("config", st);
    if (!tls.empty()) ucp_config_modify(config, "TLS", tls.c_str());
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_AM;
    const auto st = ucp_init(&params, config, &ctx_);
    ucp_config_release(config);
    if (st != UCS_OK) return ucx_error("init", st);
    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    if (auto ws = ucp_worker_create(ctx_, &wp, &worker_); ws != UCS_OK) return ucx_error("worker create", ws);
    ucp_address_t* addr = nullptr;
    std::size_t len = 0;
    if (auto as = ucp_worker_get_address(worker_, &addr, &len); as != UCS_OK) return ucx_error("worker address", as);
    address_.assign(reinterpret_cast<std::uint8_t*>(addr), reinterpret_cast<std::uint8_t*>(addr) + len);
    ucp_worker_release_address(worker_, addr);
    ucp_am_handler_param_t hp{};
    hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                    UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    hp.id = kAmId;
    hp.cb = &on_am;
    hp.arg = this;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG;
    if (auto hs = ucp_worker_set_am_recv_handler(worker_, &hp); hs != UCS_OK) return ucx_error("AM handler", hs);
    return {};
  }

  std::vector<std::uint8_t> address() const override { return address_; }

  result<void> connect(std::span<const std::uint8_t> address) override {
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    ep.address = reinterpret_cast<const ucp_address_t*>(address.data());
    ep.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    if (auto st = ucp_ep_create(worker_, &ep, &ep_); st != UCS_OK) return ucx_error("endpoint create", st);
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
    rp.cb.send = &free_request;
    rp.flags = want_reply ? UCP_AM_SEND_FLAG_REPLY : 0;
    static const std::uint8_t kinds[2] = {static_cast<std::uint8_t>(kind::ping), static_cast<std::uint8_t>(kind::stop)};
    const ucs_status_ptr_t r =
        ucp_am_send_nbx(to, kAmId, &kinds[static_cast<int>(k)], 1, data, length, &rp);
    if (UCS_PTR_IS_ERR(r)) return ucx_error("am send", UCS_PTR_STATUS(r));
    return {};
  }

  ucp_context_h ctx_ = nullptr;
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
