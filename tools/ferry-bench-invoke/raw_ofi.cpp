// The bare libfabric baseline (raw_am.hpp): an FI_EP_RDM endpoint (opened and
// closed by transport/ofi_endpoint.hpp, as ferry's own), FI_MSG sends into
// pre-posted receive buffers, fi_inject for what fits. The client
// introduces itself with its address (the server answers to it).
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <cstring>

#include <fmt/format.h>

#include "raw_am.hpp"
#include "transport/ofi_endpoint.hpp"

namespace ferry::bench {
namespace {

constexpr std::size_t kBuffer = 64 << 10;
constexpr std::size_t kBuffers = 64;
constexpr std::uint8_t kHello = 2;
constexpr std::uint8_t kAnswer = 3;

using transport::ofi::error;

class raw_ofi final : public raw_am {
 public:
  ~raw_ofi() override {
    fi_.close_endpoint();  // first: then the buffers below are the provider's no more
    if (recv_mr_) fi_close(&recv_mr_->fid);
    if (send_mr_) fi_close(&send_mr_->fid);
  }

  result<void> init(const std::string& provider) {
    FERRY_TRY_STATUS(fi_.open({.provider = provider, .caps = FI_MSG, .cq_format = FI_CQ_FORMAT_CONTEXT, .wait_fd = false}));
    inject_ = fi_.info->tx_attr->inject_size;
    FERRY_TRY(address_, fi_.address(256));
    recv_.resize(kBuffer * kBuffers);
    send_.resize(kBuffer);
    FERRY_TRY(recv_mr_, fi_.register_region(recv_.data(), recv_.size(), FI_RECV));
    FERRY_TRY(send_mr_, fi_.register_region(send_.data(), send_.size(), FI_SEND));
    ctx_.resize(kBuffers);
    for (std::size_t i = 0; i < kBuffers; ++i)
      if (auto r = post(i); r != 0) return error("post receive", r);
    return {};
  }

  std::vector<std::uint8_t> address() const override { return address_; }

  result<void> connect(std::span<const std::uint8_t> address) override {
    if (fi_av_insert(fi_.av, address.data(), 1, &server_, 0, nullptr) != 1)
      return make_error(errc::bad_format, "the server's address");
    return raw_send(server_, kHello, address_.data(), address_.size());
  }

 protected:
  result<void> send_request(kind k, const void* data, std::size_t length) override {
    return raw_send(server_, static_cast<std::uint8_t>(k), data, length);
  }
  result<void> answer(std::uint64_t to) override {
    static const std::uint64_t kGood = 0x600d;
    return raw_send(to, kAnswer, &kGood, sizeof kGood);
  }
  unsigned progress() override {
    fi_cq_entry e[16];
    const auto n = fi_cq_read(fi_.cq, e, 16);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(fi_.cq, &err, 0);
      if (err.op_context == &send_ctx_) send_busy_ = false;
      else if (err.op_context != nullptr) (void)post(index_of(err.op_context));
      return 1;
    }
    if (n <= 0) return 0;
    for (long i = 0; i < n; ++i) {
      if (e[i].op_context == &send_ctx_) {
        send_busy_ = false;
        continue;
      }
      const std::size_t slot = index_of(e[i].op_context);
      on_message(recv_.data() + slot * kBuffer);
      (void)post(slot);
    }
    return static_cast<unsigned>(n);
  }

 private:
  long post(std::size_t slot) {
    return fi_recv(fi_.ep, recv_.data() + slot * kBuffer, kBuffer, fi_mr_desc(recv_mr_), FI_ADDR_UNSPEC, &ctx_[slot]);
  }
  std::size_t index_of(void* ctx) const { return static_cast<std::size_t>(static_cast<fi_context2*>(ctx) - ctx_.data()); }

  void on_message(const std::uint8_t* m) {
    switch (m[0]) {
      case kAnswer: ++answers_; break;
      case kHello: {
        // The client's address follows (its length is known to the provider
        // only; endpoint names of one provider have one size).
        fi_av_insert(fi_.av, m + 1, 1, &client_, 0, nullptr);
        break;
      }
      case static_cast<std::uint8_t>(kind::stop): stop_ = true; [[fallthrough]];
      default: to_answer_.push_back(client_);
    }
  }

  result<void> raw_send(fi_addr_t to, std::uint8_t k, const void* data, std::size_t length) {
    if (1 + length > kBuffer) return make_error(errc::too_large, fmt::format("{}-byte raw message", length));
    if (1 + length <= inject_ && 1 + length <= sizeof small_) {
      small_[0] = k;
      std::memcpy(small_ + 1, data, length);
      for (;;) {
        const auto r = fi_inject(fi_.ep, small_, 1 + length, to);
        if (r == 0) return {};
        if (r != -FI_EAGAIN) return error("inject", r);
        progress();
      }
    }
    while (send_busy_) progress();
    send_[0] = k;
    std::memcpy(send_.data() + 1, data, length);
    for (;;) {
      const auto r = fi_send(fi_.ep, send_.data(), 1 + length, fi_mr_desc(send_mr_), to, &send_ctx_);
      if (r == 0) break;
      if (r != -FI_EAGAIN) return error("send", r);
      progress();
    }
    send_busy_ = true;
    return {};
  }

  transport::ofi::endpoint fi_;  // destroyed last (declared first)
  fid_mr* recv_mr_ = nullptr;
  fid_mr* send_mr_ = nullptr;
  std::size_t inject_ = 0;
  std::vector<std::uint8_t> address_;
  std::vector<std::uint8_t> recv_, send_;
  std::vector<fi_context2> ctx_;
  fi_context2 send_ctx_{};
  bool send_busy_ = false;
  std::uint8_t small_[512];
  fi_addr_t server_ = FI_ADDR_UNSPEC;  // client
  fi_addr_t client_ = FI_ADDR_UNSPEC;  // server
};

}  // namespace

result<std::unique_ptr<raw_am>> make_raw_ofi(const std::string& provider) {
  auto r = std::make_unique<raw_ofi>();
  FERRY_TRY_STATUS(r->init(provider));
  return std::unique_ptr<raw_am>(std::move(r));
}

}  // namespace ferry::bench
