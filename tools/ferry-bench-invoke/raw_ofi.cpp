// The bare libfabric baseline (raw_am.hpp): an FI_EP_RDM endpoint (opened and
// closed by transport/ofi_endpoint.hpp, as ferry's own), FI_MSG sends into
// pre-posted receive buffers, fi_inject for what fits. The client
// introduces itself with its address (the server answers to it). A bulk
// stream's slice is a small message naming where it is in the client's
// registered array; the server fi_reads it straight into its place in its
// own (what ferry's transport does for a large frame, without the copies).
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "raw_am.hpp"
#include "transport/ofi_endpoint.hpp"

namespace ferry::bench {
namespace {

constexpr std::size_t kBuffer = 64 << 10;
constexpr std::size_t kBuffers = 64;
constexpr std::uint8_t kHello = 0x40;   // raw_am::kind values stay below
constexpr std::uint8_t kAnswer = 0x41;
constexpr std::size_t kReads = 64;  // a stream's reads in flight at most (its window)

// A slice's message after its kind byte: where it goes, where to read it.
struct slice_message {
  std::uint64_t offset, total, length, address, key;
};

using transport::ofi::error;

class raw_ofi final : public raw_am {
 public:
  ~raw_ofi() override {
    fi_.close_endpoint();  // first: then the buffers below are the provider's no more
    if (recv_mr_) fi_close(&recv_mr_->fid);
    if (send_mr_) fi_close(&send_mr_->fid);
    source_region_.close();
    sink_region_.close();
  }

  result<void> init(const std::string& provider) {
    FERRY_TRY_STATUS(fi_.open({.provider = provider,
                               .caps = FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ,
                               .cq_format = FI_CQ_FORMAT_CONTEXT,
                               .wait_fd = false}));
    inject_ = fi_.info->tx_attr->inject_size;
    FERRY_TRY(address_, fi_.address(256));
    recv_.resize(kBuffer * kBuffers);
    send_.resize(kBuffer);
    FERRY_TRY(recv_mr_, fi_.register_region(recv_.data(), recv_.size(), FI_RECV));
    FERRY_TRY(send_mr_, fi_.register_region(send_.data(), send_.size(), FI_SEND));
    ctx_.resize(kBuffers);
    read_ctx_.resize(kReads);
    for (std::size_t i = 0; i < kReads; ++i) free_reads_.push_back(i);
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
  result<void> send_request(kind k, const void* data, std::size_t length, place at) override {
    if (k != kind::slice) return raw_send(server_, static_cast<std::uint8_t>(k), data, length);
    // The whole array is registered once for the server's reads.
    const auto* slice = static_cast<const std::uint8_t*>(data);
    FERRY_TRY_STATUS(source_region_.cover(fi_, slice - at.offset, at.total, FI_REMOTE_READ));
    const slice_message m{at.offset, at.total, length, source_region_.remote_address(fi_, slice),
                          fi_mr_key(source_region_.mr)};
    return raw_send(server_, static_cast<std::uint8_t>(kind::slice), &m, sizeof m);
  }
  result<void> answer(std::uint64_t to, std::uint64_t value) override {
    return raw_send(to, kAnswer, &value, sizeof value);  // copied before it returns
  }
  unsigned progress() override {
    start_reads();
    fi_cq_entry e[16];
    const auto n = fi_cq_read(fi_.cq, e, 16);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(fi_.cq, &err, 0);
      if (err.op_context == &send_ctx_) send_busy_ = false;
      else if (is_read(err.op_context)) read_failed(err.op_context, err.err);
      else if (err.op_context != nullptr) (void)post(index_of(err.op_context));
      return 1;
    }
    if (n <= 0) return 0;
    for (long i = 0; i < n; ++i) {
      if (e[i].op_context == &send_ctx_) {
        send_busy_ = false;
        continue;
      }
      if (is_read(e[i].op_context)) {  // a slice is in place: answer it
        free_reads_.push_back(static_cast<std::size_t>(static_cast<fi_context2*>(e[i].op_context) - read_ctx_.data()));
        queue_answer(client_, kind::slice);
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
      case kAnswer: {
        std::uint64_t value;
        std::memcpy(&value, m + 1, sizeof value);
        took_answer(value);
        break;
      }
      case kHello: {
        // The client's address follows (its length is known to the provider
        // only; endpoint names of one provider have one size).
        fi_av_insert(fi_.av, m + 1, 1, &client_, 0, nullptr);
        break;
      }
      case static_cast<std::uint8_t>(kind::slice): {
        slice_message sm;
        std::memcpy(&sm, m + 1, sizeof sm);
        reads_.push_back(sm);  // started by start_reads(), answered when read
        break;
      }
      case static_cast<std::uint8_t>(kind::stop):
        stop_ = true;
        queue_answer(client_, kind::stop);
        break;
      default: queue_answer(client_, kind::ping);
    }
  }

  // A registered region, kept while it holds what is asked of it (a
  // stream's lead-in, the first slices of the array, registers nothing).
  struct region {
    const std::uint8_t* base = nullptr;
    std::size_t length = 0;
    fid_mr* mr = nullptr;
    result<void> cover(transport::ofi::endpoint& fi, const std::uint8_t* at, std::size_t bytes, std::uint64_t access) {
      if (mr != nullptr && at >= base && bytes <= length && at - base <= static_cast<std::ptrdiff_t>(length - bytes))
        return {};
      close();
      FERRY_TRY(mr, fi.register_region(const_cast<std::uint8_t*>(at), bytes, access));
      base = at;
      length = bytes;
      return {};
    }
    void close() {
      if (mr) fi_close(&mr->fid);
      mr = nullptr;
    }
    // Where a peer's fi_read names `at`, a byte of the region.
    [[nodiscard]] std::uint64_t remote_address(const transport::ofi::endpoint& fi, const std::uint8_t* at) const {
      return fi.remote_address(base, static_cast<std::uint64_t>(at - base));
    }
  };

  bool is_read(void* ctx) const {
    const auto* c = static_cast<fi_context2*>(ctx);
    return c >= read_ctx_.data() && c < read_ctx_.data() + read_ctx_.size();
  }
  // Server: start the reads of the slices announced, as far as contexts and
  // the provider allow (the rest wait for the next turn).
  void start_reads() {
    while (!reads_.empty() && !free_reads_.empty()) {
      const slice_message& sm = reads_.front();
      std::uint8_t* into = slice_destination(place{sm.offset, sm.total}, sm.length);
      if (into == nullptr) {  // said by slice_destination
        queue_answer(client_, kind::slice);
        reads_.pop_front();
        continue;
      }
      if (auto s = sink_region_.cover(fi_, into - sm.offset, sm.total, FI_READ); !s) {
        skip_slice(s.error().describe());
        reads_.pop_front();
        continue;
      }
      const std::size_t slot = free_reads_.back();
      const auto rc = fi_read(fi_.ep, into, sm.length, fi_mr_desc(sink_region_.mr), client_, sm.address, sm.key, &read_ctx_[slot]);
      if (rc == -FI_EAGAIN) return;
      reads_.pop_front();
      if (rc != 0) {
        skip_slice(error("read of a slice", rc).describe());
        continue;
      }
      free_reads_.pop_back();
    }
  }
  // A read that failed once started: its context is free again.
  void read_failed(void* ctx, int err) {
    free_reads_.push_back(static_cast<std::size_t>(static_cast<fi_context2*>(ctx) - read_ctx_.data()));
    skip_slice(error("read of a slice", -static_cast<long>(err)).describe());
  }
  // A slice not read into place: said, and answered all the same, so that
  // the stream ends at once and the client's digest check reports it.
  void skip_slice(std::string_view why) {
    fmt::print(stderr, "bench server: a slice not read into place: {}\n", why);
    queue_answer(client_, kind::slice);
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
  std::vector<fi_context2> read_ctx_;  // server: a read's context each
  std::vector<std::size_t> free_reads_;
  std::deque<slice_message> reads_;    // server: slices announced, not yet being read
  region source_region_;               // client: the array a stream reads from
  region sink_region_;                 // server: the array slices go to
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
