// The bare libfabric baseline (raw_am.hpp): an FI_EP_RDM endpoint, FI_MSG
// sends into pre-posted receive buffers, fi_inject for what fits. The client
// introduces itself with its address (the server answers to it).
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <cstring>

#include <fmt/format.h>

#include "raw_am.hpp"

namespace ferry::bench {
namespace {

constexpr std::size_t kBuffer = 64 << 10;
constexpr std::size_t kBuffers = 64;
constexpr std::uint8_t kHello = 2;
constexpr std::uint8_t kAnswer = 3;

status ofi_error(std::string_view what, long rc) {
  return make_error(errc::io_error, fmt::format("libfabric {}: {}", what, fi_strerror(static_cast<int>(-rc))));
}

class raw_ofi final : public raw_am {
 public:
  ~raw_ofi() override {
    if (ep_) fi_close(&ep_->fid);
    if (recv_mr_) fi_close(&recv_mr_->fid);
    if (send_mr_) fi_close(&send_mr_->fid);
    if (cq_) fi_close(&cq_->fid);
    if (av_) fi_close(&av_->fid);
    if (domain_) fi_close(&domain_->fid);
    if (fabric_) fi_close(&fabric_->fid);
    if (info_) fi_freeinfo(info_);
  }

  result<void> init(const std::string& provider) {
    fi_info* hints = fi_allocinfo();
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_MSG;
    hints->mode = FI_CONTEXT | FI_CONTEXT2;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    hints->domain_attr->threading = FI_THREAD_DOMAIN;
    if (!provider.empty()) hints->fabric_attr->prov_name = ::strdup(provider.c_str());
    const int rc = fi_getinfo(FI_VERSION(1, 17), nullptr, nullptr, 0, hints, &info_);
    fi_freeinfo(hints);
    if (rc != 0) return ofi_error(fmt::format("provider '{}'", provider), rc);
    inject_ = info_->tx_attr->inject_size;
    if (auto r = fi_fabric(info_->fabric_attr, &fabric_, nullptr); r != 0) return ofi_error("fabric", r);
    if (auto r = fi_domain(fabric_, info_, &domain_, nullptr); r != 0) return ofi_error("domain", r);
    fi_cq_attr ca{};
    ca.format = FI_CQ_FORMAT_CONTEXT;
    ca.size = info_->rx_attr->size + info_->tx_attr->size;
    if (auto r = fi_cq_open(domain_, &ca, &cq_, nullptr); r != 0) return ofi_error("CQ", r);
    fi_av_attr aa{};
    aa.type = FI_AV_TABLE;
    if (auto r = fi_av_open(domain_, &aa, &av_, nullptr); r != 0) return ofi_error("AV", r);
    if (auto r = fi_endpoint(domain_, info_, &ep_, nullptr); r != 0) return ofi_error("endpoint", r);
    fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV);
    fi_ep_bind(ep_, &av_->fid, 0);
    if (auto r = fi_enable(ep_); r != 0) return ofi_error("enable", r);
    std::size_t len = 256;
    address_.resize(len);
    if (auto r = fi_getname(&ep_->fid, address_.data(), &len); r != 0) return ofi_error("getname", r);
    address_.resize(len);
    recv_.resize(kBuffer * kBuffers);
    send_.resize(kBuffer);
    FERRY_TRY(recv_mr_, reg(recv_.data(), recv_.size(), FI_RECV, 1));
    FERRY_TRY(send_mr_, reg(send_.data(), send_.size(), FI_SEND, 2));
    ctx_.resize(kBuffers);
    for (std::size_t i = 0; i < kBuffers; ++i)
      if (auto r = post(i); r != 0) return ofi_error("post receive", r);
    return {};
  }

  std::vector<std::uint8_t> address() const override { return address_; }

  result<void> connect(std::span<const std::uint8_t> address) override {
    if (fi_av_insert(av_, address.data(), 1, &server_, 0, nullptr) != 1)
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
    const auto n = fi_cq_read(cq_, e, 16);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(cq_, &err, 0);
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
  result<fid_mr*> reg(void* p, std::size_t n, std::uint64_t access, std::uint64_t key) {
    fid_mr* mr = nullptr;
    if (auto r = fi_mr_reg(domain_, p, n, access, 0, key, 0, &mr, nullptr); r != 0) return ofi_error("mr", r);
    if (info_->domain_attr->mr_mode & FI_MR_ENDPOINT) {
      fi_mr_bind(mr, &ep_->fid, 0);
      fi_mr_enable(mr);
    }
    return mr;
  }
  long post(std::size_t slot) {
    return fi_recv(ep_, recv_.data() + slot * kBuffer, kBuffer, fi_mr_desc(recv_mr_), FI_ADDR_UNSPEC, &ctx_[slot]);
  }
  std::size_t index_of(void* ctx) const { return static_cast<std::size_t>(static_cast<fi_context2*>(ctx) - ctx_.data()); }

  void on_message(const std::uint8_t* m) {
    switch (m[0]) {
      case kAnswer: ++answers_; break;
      case kHello: {
        // The client's address follows (its length is known to the provider
        // only; endpoint names of one provider have one size).
        fi_av_insert(av_, m + 1, 1, &client_, 0, nullptr);
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
        const auto r = fi_inject(ep_, small_, 1 + length, to);
        if (r == 0) return {};
        if (r != -FI_EAGAIN) return ofi_error("inject", r);
        progress();
      }
    }
    while (send_busy_) progress();
    send_[0] = k;
    std::memcpy(send_.data() + 1, data, length);
    for (;;) {
      const auto r = fi_send(ep_, send_.data(), 1 + length, fi_mr_desc(send_mr_), to, &send_ctx_);
      if (r == 0) break;
      if (r != -FI_EAGAIN) return ofi_error("send", r);
      progress();
    }
    send_busy_ = true;
    return {};
  }

  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  fid_ep* ep_ = nullptr;
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
