// UCX backend: active messages (one AM id carries every frame), rendezvous
// for large frames via ucp_am_recv_data_nbx, RMA get for one-sided reads,
// worker wakeup fd for blocking. Error-handling mode NONE keeps shm usable
// (peer mode silently drops to tcp, docs/platform-notes.md); liveness is the node's job.
#include <ucp/api/ucp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "ordered_delivery.hpp"
#include "transport.hpp"
#include "ucx_setup.hpp"
#include "wire/frames.hpp"

namespace ferry::transport {
namespace {

constexpr unsigned kFrameAmId = 0;
constexpr unsigned kHearingAmId = 1;  // this process to itself: check_hearing()
constexpr std::size_t kMaxAddress = 1 << 16;

using ucx::error;

class ucx_memory final : public registered_memory {
 public:
  ucx_memory(ucp_context_h ctx, ucp_mem_h memh, remote_region region)
      : ctx_(ctx), memh_(memh), region_(std::move(region)) {}
  ~ucx_memory() override { ucp_mem_unmap(ctx_, memh_); }
  remote_region describe() const override { return region_; }

 private:
  ucp_context_h ctx_;
  ucp_mem_h memh_;
  remote_region region_;
};

class ucx_transport final : public transport {
 public:
  ~ucx_transport() override {
    if (hearing_.ep) ucx::close_endpoint(hearing_.worker, hearing_.ep);
    if (hearing_.worker) ucp_worker_destroy(hearing_.worker);
    for (ucp_ep_h ep : eps_)
      if (ep != nullptr) ucx::close_endpoint(worker_, ep);
    if (worker_) ucp_worker_destroy(worker_);
    if (ctx_) ucp_cleanup(ctx_);
    for (auto* p : spare_sends_) delete p;
    for (auto* p : spare_large_sends_) delete p;
  }

  result<void> init(const options& opts) {
    tls_ = opts.tls;
    FERRY_TRY(ctx_, ucx::init_context(opts.tls, UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP));
    // One thread at a time: the member's driver.
    FERRY_TRY(worker_, ucx::create_worker(ctx_, UCS_THREAD_MODE_SERIALIZED));
    FERRY_TRY(address_, ucx::worker_address(worker_));
    if (auto es = ucp_worker_get_efd(worker_, &efd_); es != UCS_OK) return error("wakeup fd", es);
    FERRY_TRY_STATUS(ucx::set_am_handler(worker_, kFrameAmId, &on_am, this));
    if (!may_use_shared_memory(opts.tls)) return {};
    FERRY_TRY_STATUS(ucx::set_am_handler(worker_, kHearingAmId, &on_hearing_probe, this));
    FERRY_TRY(hearing_.worker, ucx::create_worker(ctx_, UCS_THREAD_MODE_SERIALIZED));
    FERRY_TRY(hearing_.ep, ucx::create_endpoint(hearing_.worker, address_));
    return {};
  }

  std::string name() const override { return tls_.empty() ? "ucx" : "ucx/" + tls_; }
  std::vector<std::uint8_t> address() const override { return tag_address("ucx", address_); }

  result<peer_index> connect(std::span<const std::uint8_t> tagged) override {
    FERRY_TRY(const auto address, untag_address("ucx", tagged));
    if (address.empty() || address.size() > kMaxAddress)
      return make_error(errc::bad_format, fmt::format("UCX worker address of {} bytes", address.size()));
    const auto peer = static_cast<peer_index>(eps_.size());
    if (in_callback_) {  // see deferred_peer
      eps_.push_back(nullptr);
      deferred_.push_back({peer, {address.begin(), address.end()}, {}, {}});
      return peer;
    }
    FERRY_TRY(const ucp_ep_h h, ucx::create_endpoint(worker_, address));
    eps_.push_back(h);
    return peer;
  }

  void on_frame(frame_handler handler) override { handler_ = std::move(handler); }

  result<void> send(peer_index to, std::span<const std::uint8_t> frame) override {
    if (to >= eps_.size()) return make_error(errc::not_found, fmt::format("no UCX peer {}", to));
    if (eps_[to] == nullptr) {
      if (in_callback_) return hold_for_deferred(to, frame);
      connect_deferred();
      if (eps_[to] == nullptr) return deferred_failure(to);
    }
    // Small frames leave at once from the caller's buffer (UCX copies them
    // into its own): no allocation on the warm path.
    ucp_request_param_t now{};
    now.op_attr_mask = UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL;
    const ucs_status_ptr_t sent = ucp_am_send_nbx(eps_[to], kFrameAmId, nullptr, 0, frame.data(), frame.size(), &now);
    if (sent == nullptr) return {};
    if (!UCS_PTR_IS_ERR(sent)) {  // not expected with FORCE_IMM_CMPL: wait, the buffer is the caller's
      ucs_status_t st;
      while ((st = ucp_request_check_status(sent)) == UCS_INPROGRESS) ucp_worker_progress(worker_);
      ucp_request_free(sent);
      if (st == UCS_OK) return {};
      return error(fmt::format("send to peer {}", to), st);
    }
    if (UCS_PTR_STATUS(sent) != UCS_ERR_NO_RESOURCE)
      return error(fmt::format("send to peer {}", to), UCS_PTR_STATUS(sent));
    // It cannot leave at once (beyond UCX's short-message size): the
    // transport keeps a copy until it has, in a buffer it reuses.
    return send_copy(to, frame, {});
  }

  result<void> send_parts(peer_index to, std::span<const std::uint8_t> head,
                          std::span<const std::uint8_t> data) override {
    // A bulk frame: copied once, from both parts into the kept buffer, where
    // joining them first would copy the data twice. (Small ones, and peers
    // not connected yet, take send()'s way.)
    if (head.size() + data.size() <= kSpareSendCapacity || to >= eps_.size() || eps_[to] == nullptr)
      return transport::send_parts(to, head, data);
    return send_copy(to, head, data);
  }

  result<void> send_taking(peer_index to, std::vector<std::uint8_t>& frame) override {
    // A large frame leaves from the caller's buffer, which the transport
    // keeps until the send completes; the caller gets a kept one instead.
    if (frame.size() <= kSpareSendCapacity || to >= eps_.size() || eps_[to] == nullptr) return send(to, frame);
    pending_send* pending = take_spare_send(frame.size());
    pending->frame.swap(frame);  // `frame` keeps the spare's size: resized to the next frame's, nothing is zeroed
    return send_pending(to, pending);
  }

  /// Send `head` followed by `data` from a buffer the transport keeps until
  /// the send completes.
  result<void> send_copy(peer_index to, std::span<const std::uint8_t> head, std::span<const std::uint8_t> data) {
    pending_send* pending = take_spare_send(head.size() + data.size());
    pending->frame.assign(head.begin(), head.end());
    pending->frame.insert(pending->frame.end(), data.begin(), data.end());
    return send_pending(to, pending);
  }

  unsigned progress() override {
    unsigned n = ucp_worker_progress(worker_);
    n += ordered_.deliver([this](std::span<const std::uint8_t> f) { deliver(f); });
    if (!in_callback_ && waiting_for_endpoint()) {
      ++n;
      connect_deferred();  // a failed one stays failed: its sends report it
    }
    return n;
  }

  std::string deaf() override {
    if (!in_callback_) check_hearing();
    return hearing_.deaf;
  }

  int event_fd() const override { return efd_; }
  std::uint64_t dropped_frames() const override { return dropped_.load(std::memory_order_relaxed); }

  bool arm() override { return !ordered_.ready() && !waiting_for_endpoint() && ucp_worker_arm(worker_) == UCS_OK; }

  result<std::unique_ptr<registered_memory>> register_memory(std::span<std::byte> memory) override {
    ucp_mem_map_params_t mp{};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = memory.data();
    mp.length = memory.size();
    ucp_mem_h memh = nullptr;
    if (auto s = ucp_mem_map(ctx_, &mp, &memh); s != UCS_OK) return error("mem map", s);
    void* key = nullptr;
    std::size_t key_len = 0;
    if (auto s = ucp_rkey_pack(ctx_, memh, &key, &key_len); s != UCS_OK) {
      ucp_mem_unmap(ctx_, memh);
      return error("rkey pack", s);
    }
    remote_region region{reinterpret_cast<std::uint64_t>(memory.data()), memory.size(),
                         {static_cast<std::uint8_t*>(key), static_cast<std::uint8_t*>(key) + key_len}};
    ucp_rkey_buffer_release(key);
    return std::unique_ptr<registered_memory>(std::make_unique<ucx_memory>(ctx_, memh, std::move(region)));
  }

  result<void> get(peer_index from, const remote_region& region, std::uint64_t offset, std::span<std::byte> into,
                   int timeout_ms) override {
    if (from >= eps_.size()) return make_error(errc::not_found, fmt::format("no UCX peer {}", from));
    if (eps_[from] == nullptr && !in_callback_) connect_deferred();
    if (eps_[from] == nullptr) return deferred_failure(from);
    if (offset > region.length || region.length - offset < into.size())
      return make_error(errc::out_of_bounds, fmt::format("get of [{}, +{}) outside a {}-byte region", offset,
                                                         into.size(), region.length));
    ucp_rkey_h rkey = nullptr;
    if (auto s = ucp_ep_rkey_unpack(eps_[from], region.key.data(), &rkey); s != UCS_OK)
      return error("rkey unpack", s);
    ucp_request_param_t rp{};
    const ucs_status_ptr_t r = ucp_get_nbx(eps_[from], into.data(), into.size(), region.address + offset, rkey, &rp);
    status result_status;
    if (UCS_PTR_IS_ERR(r)) {
      result_status = error("get", UCS_PTR_STATUS(r));
    } else if (r != nullptr) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      ucs_status_t s;
      while ((s = ucp_request_check_status(r)) == UCS_INPROGRESS) {
        progress();
        if (std::chrono::steady_clock::now() > deadline) {
          ucp_request_cancel(worker_, r);
          while ((s = ucp_request_check_status(r)) == UCS_INPROGRESS) ucp_worker_progress(worker_);
          s = UCS_ERR_TIMED_OUT;
          break;
        }
      }
      ucp_request_free(r);
      if (s == UCS_ERR_TIMED_OUT)
        result_status = make_error(errc::timeout, fmt::format("get from peer {} took over {} ms", from, timeout_ms));
      else if (s != UCS_OK)
        result_status = error("get", s);
    }
    ucp_rkey_destroy(rkey);
    if (!result_status.ok()) return result_status;
    return {};
  }

 private:
  // A peer connected from inside UCX's AM callback (a node handles a hello as
  // it arrives and connects back) gets its endpoint only once
  // ucp_worker_progress has returned: UCX 1.13's tcp transport crashes when
  // ucp_ep_create runs while it is still reading that peer's accepted
  // connection (docs/platform-notes.md). Frames sent to it meanwhile wait
  // here, in order.
  struct deferred_peer {
    peer_index peer;
    std::vector<std::uint8_t> address;
    std::vector<std::vector<std::uint8_t>> frames;
    status failed;  // creating its endpoint failed: every send reports this
  };

  result<void> hold_for_deferred(peer_index to, std::span<const std::uint8_t> frame) {
    for (auto& d : deferred_)
      if (d.peer == to) {
        if (!d.failed.ok()) return d.failed;
        d.frames.emplace_back(frame.begin(), frame.end());
        return {};
      }
    return make_error(errc::not_found, fmt::format("no UCX peer {}", to));
  }

  /// Why deferred peer `to` has no endpoint (it failed, or it is still waiting).
  status deferred_failure(peer_index to) const {
    for (const auto& d : deferred_)
      if (d.peer == to && !d.failed.ok()) return d.failed;
    return make_error(errc::io_error, fmt::format("UCX peer {} is not connected yet", to));
  }

  /// A deferred peer still waits for its endpoint (failed ones do not).
  [[nodiscard]] bool waiting_for_endpoint() const {
    for (const auto& d : deferred_)
      if (d.failed.ok()) return true;
    return false;
  }

  /// Create the waiting endpoints and send what waited for them, outside
  /// UCX's callbacks only. A peer whose endpoint cannot be created stays
  /// here, failed: its sends report why.
  void connect_deferred() {
    for (std::size_t i = 0; i < deferred_.size();) {
      auto& d = deferred_[i];
      if (!d.failed.ok()) {
        ++i;
        continue;
      }
      auto h = ucx::create_endpoint(worker_, d.address);
      if (!h) {
        d.failed = h.error();
        d.frames.clear();
        ++i;
        continue;
      }
      eps_[d.peer] = *h;
      auto waiting = std::move(d.frames);
      const peer_index peer = d.peer;
      deferred_.erase(deferred_.begin() + static_cast<std::ptrdiff_t>(i));
      for (const auto& f : waiting) (void)send(peer, f);  // lost like any failed send: the caller's deadline reports it
    }
  }

  struct pending_send {
    ucx_transport* self;
    std::vector<std::uint8_t> frame;
  };

  /// Send the frame `pending` holds; its buffer comes back to the spares
  /// when the send completes.
  result<void> send_pending(peer_index to, pending_send* pending) {
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    rp.cb.send = &on_send_done;
    rp.user_data = pending;
    const ucs_status_ptr_t r =
        ucp_am_send_nbx(eps_[to], kFrameAmId, nullptr, 0, pending->frame.data(), pending->frame.size(), &rp);
    if (r == nullptr) {  // completed in place; the callback will not run
      give_back(pending);
      return {};
    }
    if (UCS_PTR_IS_ERR(r)) {
      give_back(pending);
      return error(fmt::format("send to peer {}", to), UCS_PTR_STATUS(r));
    }
    return {};  // on_send_done gives the buffer back and frees the request
  }

  // Send buffers are reused (only the driving thread sends or completes):
  // a warm send allocates nothing. Buffers up to kSpareSendCapacity are kept
  // however many there are (as many as sends were ever in flight at once);
  // larger ones up to kReusedFrameBytes, kSpareLargeBuffers of them (the
  // chunks of a large transfer: transport.hpp); larger still are freed.
  static constexpr std::size_t kSpareSendCapacity = 64 << 10;
  std::vector<pending_send*> spare_sends_;
  std::vector<pending_send*> spare_large_sends_;

  pending_send* take_spare_send(std::size_t length) {
    auto& spares = length > kSpareSendCapacity && !spare_large_sends_.empty() ? spare_large_sends_ : spare_sends_;
    if (spares.empty()) return new pending_send{this, {}};
    auto* p = spares.back();
    spares.pop_back();
    return p;
  }
  void give_back(pending_send* p) {
    const std::size_t capacity = p->frame.capacity();
    if (capacity <= kSpareSendCapacity) {
      spare_sends_.push_back(p);
    } else if (capacity <= kReusedFrameBytes && spare_large_sends_.size() < kSpareLargeBuffers) {
      spare_large_sends_.push_back(p);
    } else {
      delete p;
    }
  }
  struct pending_recv {
    ordered_delivery::slot* slot;
    large_bytes frame;
  };

  static void on_send_done(void* request, ucs_status_t, void* user_data) {
    auto* p = static_cast<pending_send*>(user_data);
    p->self->give_back(p);
    ucp_request_free(request);
  }

  static void on_rndv_done(void* request, ucs_status_t status, std::size_t, void* user_data) {
    auto* p = static_cast<pending_recv*>(user_data);
    ordered_delivery::fill(p->slot, status == UCS_OK ? std::move(p->frame) : large_bytes{});
    delete p;
    ucp_request_free(request);
  }

  static ucs_status_t on_am(void* arg, const void*, std::size_t, void* data, std::size_t length,
                            const ucp_am_recv_param_t* param) {
    auto* self = static_cast<ucx_transport*>(arg);
    if (length > wire::kMaxFrame) {  // dropped unread: returning UCS_OK releases a rendezvous descriptor
      self->dropped_.fetch_add(1, std::memory_order_relaxed);
      return UCS_OK;
    }
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
      // Frames that arrive meanwhile wait behind this one: order is kept.
      auto* p = new pending_recv{self->ordered_.reserve(), self->ordered_.buffer(length)};
      ucp_request_param_t rp{};
      rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
      rp.cb.recv_am = &on_rndv_done;
      rp.user_data = p;
      const ucs_status_ptr_t r = ucp_am_recv_data_nbx(self->worker_, data, p->frame.data(), length, &rp);
      if (r == nullptr) {  // completed in place
        ordered_delivery::fill(p->slot, std::move(p->frame));
        delete p;
      } else if (UCS_PTR_IS_ERR(r)) {
        ordered_delivery::fill(p->slot, {});  // the frame is lost; the sender's deadline reports it
        delete p;
      }
      return UCS_OK;
    }
    const std::span<const std::uint8_t> frame{static_cast<const std::uint8_t*>(data), length};
    if (!self->ordered_.empty()) {
      self->ordered_.hold(frame);
      return UCS_OK;
    }
    const bool nested = self->in_callback_;
    self->in_callback_ = true;
    self->deliver(frame);
    self->in_callback_ = nested;
    return UCS_OK;
  }

  void deliver(std::span<const std::uint8_t> frame) {
    if (handler_) handler_(frame);
  }

  // Hearing. Over shared memory every sender writes into this process's one
  // receive queue, and a sender killed in the middle of a write leaves an
  // element this process waits on for good: it then hears no one again,
  // while its own sends, heartbeats included, still go out
  // (docs/transports.md, "A peer that dies"). So a second worker of this
  // process sends this worker a small message through that same queue now
  // and then (from deaf(), each heartbeat period: nothing on the warm
  // path); one that has not arrived after kDeafAfter, through at least
  // kDeafAfterTurns looks with progress between them, means the queue is
  // stuck. The probe is sent again until it is in the queue (a full queue
  // refuses it): a queue that stays full while it is progressed is as stuck.
  static constexpr auto kHearingEvery = std::chrono::milliseconds(500);
  static constexpr auto kDeafAfter = std::chrono::seconds(2);
  static constexpr unsigned kDeafAfterTurns = 16;
  struct hearing {
    ucp_worker_h worker = nullptr;  // the prober
    ucp_ep_h ep = nullptr;          // from it to worker_
    std::chrono::steady_clock::time_point sent{};  // the outstanding probe's first attempt
    bool outstanding = false;
    bool queued = false;            // it got into the queue
    unsigned turns = 0;             // looks since it was sent
    bool ever_queued = false;       // a probe has made it into the queue
    std::string deaf;
  };

  static bool may_use_shared_memory(const std::string& tls) {
    if (tls.empty()) return true;  // UCX's choice (or UCX_TLS): shared memory between processes of one host
    for (const char* shm : {"shm", "sm", "mm", "posix", "sysv", "xpmem"})
      if (tls.find(shm) != std::string::npos) return true;
    return false;
  }

  void check_hearing() {
    if (!hearing_.worker || !hearing_.deaf.empty()) return;
    ucp_worker_progress(hearing_.worker);
    const auto now = std::chrono::steady_clock::now();
    if (!hearing_.outstanding) {
      if (now - hearing_.sent < kHearingEvery) return;
      hearing_.sent = now;
      hearing_.outstanding = true;
      hearing_.queued = false;
      hearing_.turns = 0;
    }
    if (!hearing_.queued) {
      static constexpr std::uint8_t kProbe = 0;
      ucp_request_param_t now_only{};
      now_only.op_attr_mask = UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL;
      hearing_.queued = ucp_am_send_nbx(hearing_.ep, kHearingAmId, nullptr, 0, &kProbe, 1, &now_only) == nullptr;
      hearing_.ever_queued |= hearing_.queued;
    }
    // Judged only once a probe has made it into the queue: a path the probe
    // cannot take at all says nothing about the queue.
    if (++hearing_.turns >= kDeafAfterTurns && now - hearing_.sent > kDeafAfter && hearing_.ever_queued)
      hearing_.deaf = fmt::format(
          "this process's UCX shared-memory receive queue is stuck: a message it sent itself has not arrived "
          "in {} s ({}), so it can hear no peer again. A peer killed in the middle of a send to it leaves the "
          "queue so (docs/transports.md, \"A peer that dies\")",
          std::chrono::duration_cast<std::chrono::seconds>(now - hearing_.sent).count(),
          hearing_.queued ? "it is in the queue" : "the queue stays full");
  }

  static ucs_status_t on_hearing_probe(void* arg, const void*, std::size_t, void*, std::size_t,
                                       const ucp_am_recv_param_t*) {
    auto* self = static_cast<ucx_transport*>(arg);
    self->hearing_.outstanding = false;
    return UCS_OK;
  }

  std::string tls_;
  ucp_context_h ctx_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int efd_ = -1;
  std::vector<std::uint8_t> address_;
  std::vector<ucp_ep_h> eps_;  // nullptr: deferred (deferred_peer)
  std::vector<deferred_peer> deferred_;
  bool in_callback_ = false;  // a frame is being handled inside on_am
  frame_handler handler_;
  ordered_delivery ordered_;
  std::atomic<std::uint64_t> dropped_{0};  // written by the driving thread, read by any
  hearing hearing_;
};

}  // namespace

result<std::unique_ptr<transport>> make_ucx_transport(const options& opts) {
  auto t = std::make_unique<ucx_transport>();
  FERRY_TRY_STATUS(t->init(opts));
  return std::unique_ptr<transport>(std::move(t));
}

}  // namespace ferry::transport
