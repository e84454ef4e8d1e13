// The bare UCX baseline (raw_am.hpp).
#include "raw_am.hpp"

#include <cstring>

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
  result<void> send_request(kind k, const void* data, std::size_t length, place at) override {
    return send(ep_, k, data, length, true, at);
  }
  result<void> answer(std::uint64_t to, std::uint64_t value) override {
    // The bytes must stay until UCX has sent them: kDone is static, and a
    // server answers one stop.
    const std::uint64_t* kept = &kDone;
    if (value != kDone) kept = &(stop_answer_ = value);
    return send(reinterpret_cast<ucp_ep_h>(to), kind::ping, kept, sizeof *kept, false);
  }
  unsigned progress() override { return ucp_worker_progress(worker_); }

 private:
  static ucs_status_t on_am(void* arg, const void* header, std::size_t header_length, void* data, std::size_t length,
                            const ucp_am_recv_param_t* param) {
    auto* s = static_cast<raw_ucx*>(arg);
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP)) {  // an answer (client side)
      std::uint64_t value = 0;
      if (length == sizeof value && !(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) std::memcpy(&value, data, sizeof value);
      s->took_answer(value);
      return UCS_OK;
    }
    const auto reply = reinterpret_cast<std::uint64_t>(param->reply_ep);
    const auto* h = static_cast<const std::uint8_t*>(header);
    const bool stop = header_length == 1 && h[0] == static_cast<std::uint8_t>(kind::stop);
    if (stop) s->stop_ = true;
    // Where the data goes: a slice into its place in the server's array,
    // anything else into one scratch buffer.
    std::uint8_t* into = nullptr;
    if (header_length == sizeof(slice_header) && h[0] == static_cast<std::uint8_t>(kind::slice)) {
      slice_header sh;
      std::memcpy(&sh, header, sizeof sh);
      into = s->slice_destination(place{sh.offset, sh.total}, length);
    }
    if (into == nullptr) {
      if (s->scratch_.size() < length) s->scratch_.resize(length);
      into = s->scratch_.data();
    }
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
      // Large message: pull it in (that is the cost being measured), then answer.
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
        d->s->queue_answer(d->reply, kind::slice);
        delete d;
        ucp_request_free(request);
      };
      const ucs_status_ptr_t r = ucp_am_recv_data_nbx(s->worker_, data, into, length, &rp);
      if (r == nullptr || UCS_PTR_IS_ERR(r)) {
        s->queue_answer(reply, kind::slice);
        delete d;
      }
      return UCS_OK;
    }
    std::memcpy(into, data, length);  // eager: the bytes are here; copied as a receive into place would
    s->queue_answer(reply, stop ? kind::stop : kind::ping);
    return UCS_OK;
  }

  // A slice's header: its kind, then where it goes (packed: 17 bytes).
  struct [[gnu::packed]] slice_header {
    std::uint8_t kind;
    std::uint64_t offset;
    std::uint64_t total;
  };

  result<void> send(ucp_ep_h to, kind k, const void* data, std::size_t length, bool want_reply, place at = {}) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_FLAGS;
    rp.cb.send = &free_ucx_request;
    rp.flags = want_reply ? UCP_AM_SEND_FLAG_REPLY : 0;
    static const std::uint8_t kinds[2] = {static_cast<std::uint8_t>(kind::ping), static_cast<std::uint8_t>(kind::stop)};
    if (k == kind::slice) {
      // The header must stay until the send completes (UCX 1.13 has no
      // UCP_AM_SEND_FLAG_COPY_HEADER): one allocation per slice, freed then.
      auto* sh = new slice_header{static_cast<std::uint8_t>(kind::slice), at.offset, at.total};
      rp.op_attr_mask |= UCP_OP_ATTR_FIELD_USER_DATA;
      rp.user_data = sh;
      rp.cb.send = [](void* request, ucs_status_t, void* user) {
        delete static_cast<slice_header*>(user);
        ucp_request_free(request);
      };
      const ucs_status_ptr_t r = ucp_am_send_nbx(to, kAmId, sh, sizeof *sh, data, length, &rp);
      if (r == nullptr || UCS_PTR_IS_ERR(r)) delete sh;
      if (UCS_PTR_IS_ERR(r)) return ucx_error("am send", UCS_PTR_STATUS(r));
      return {};
    }
    const ucs_status_ptr_t r = ucp_am_send_nbx(to, kAmId, &kinds[static_cast<int>(k)], 1, data, length, &rp);
    if (UCS_PTR_IS_ERR(r)) return ucx_error("am send", UCS_PTR_STATUS(r));
    return {};
  }

  std::unique_ptr<raw_worker> w_;
  ucp_worker_h worker_ = nullptr;
  ucp_ep_h ep_ = nullptr;  // client: the server
  std::vector<std::uint8_t> address_;
  std::vector<std::uint8_t> scratch_;
  std::uint64_t stop_answer_ = 0;  // server: what it answered the stop with
};

}  // namespace

result<std::unique_ptr<raw_am>> make_raw_ucx(const std::string& tls) {
  auto r = std::make_unique<raw_ucx>();
  FERRY_TRY_STATUS(r->init(tls));
  return std::unique_ptr<raw_am>(std::move(r));
}

}  // namespace ferry::bench
