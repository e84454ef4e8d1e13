// libfabric backend (FI_EP_RDM): frames as FI_MSG sends into a pool of
// pre-posted receive buffers; frames too large for those buffers go by
// rendezvous (the receiver fi_reads them from the sender's registered copy,
// wire/ofi_messages.hpp); get() is fi_read. The endpoint, every MR mode and
// shm endpoint names are handled in ofi_endpoint.cpp. Like UCX over shm, a dead peer
// gives no error completion: liveness is the node's job. docs/transports.md.
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "ofi_endpoint.hpp"
#include "ordered_delivery.hpp"
#include "transport.hpp"
#include "wire/frames.hpp"
#include "wire/ofi_messages.hpp"

namespace ferry::transport {
namespace {

namespace msg = wire::ofi;

// A frame up to this size (with its header) is sent eagerly into a
// pre-posted buffer; larger frames go by rendezvous.
constexpr std::size_t kEagerMessage = 16 << 10;
constexpr std::size_t kReceiveBuffers = 128;
// Providers without a wait descriptor (shm): a blocked driver looks again
// after a pause that starts short and doubles while nothing arrives: a
// member in the middle of an exchange is soon awake again, an idle one
// costs little CPU (docs/transports.md, "Waiting").
constexpr long kFirstPollUs = 50;
constexpr long kLongestPollUs = 2000;
constexpr std::size_t kCompletionBatch = 16;
// Send buffers come in two sizes: most frames (calls, answers, errors,
// heartbeats) fit the small one.
constexpr std::size_t kSmallSlot = 512;
// Frames waiting for one peer that does not take them (over tcp;ofi_rxm a
// send to a dead peer is refused with EAGAIN, for ever): at most this many
// bytes of send buffers, and dropped after kStuckLimit without one leaving
// — the callers' deadlines and the heartbeats report the loss. A bound in
// bytes, not frames: a live peer may be sent a burst (a node answers every
// call it forwarded to a member that died: thousands of small frames) that
// waits here while ofi_rxm's transmit queue, which all peers share, is
// full; those frames must not be lost.
constexpr std::size_t kMaxBacklogBytes = 16 << 20;
constexpr auto kStuckLimit = std::chrono::seconds(10);
// A peer that has taken nothing for this long is tried again only this
// often: each try at a dead tcp;ofi_rxm peer is a new connection attempt.
constexpr auto kRetryAfter = std::chrono::milliseconds(1);

// libfabric reads its settings from the environment when it first loads its
// providers. ofi_rxm's defaults (128 receives and sends per connection, in
// 16 KiB bounce buffers) make each process touch about 68 MB when its
// endpoint opens (0.7 s here, docs/transports.md); 32 each is plenty for a
// ferry member. A value the user set is kept.
void default_provider_settings() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::setenv("FI_OFI_RXM_MSG_TX_SIZE", "32", 0);
    ::setenv("FI_OFI_RXM_MSG_RX_SIZE", "32", 0);
  });
}

// Every operation's context starts with the provider's scratch space
// (FI_CONTEXT / FI_CONTEXT2 modes), then says what kind of operation it is.
struct operation {
  fi_context2 ctx{};
  enum class type : std::uint8_t { receive, send, read } op;
  explicit operation(type t) : op(t) {}
};

struct receive_slot : operation {
  receive_slot() : operation(type::receive) {}
  std::uint8_t* buffer = nullptr;
};

// A message this transport sends from its own registered buffer.
struct send_slot : operation {
  send_slot() : operation(type::send) {}
  std::vector<std::uint8_t> bytes;
  fid_mr* mr = nullptr;
  fi_addr_t to = FI_ADDR_UNSPEC;
  std::size_t length = 0;
};

// A read from a peer's memory, into memory this transport owns: if its
// waiter gives up, the provider may still write there until completion.
struct read_op : operation {
  read_op() : operation(type::read) {}
  large_bytes bytes;
  fid_mr* mr = nullptr;
  enum class state : std::uint8_t { pending, done, failed } st = state::pending;
  bool abandoned = false;                   // its get() timed out: free on completion
  ordered_delivery::slot* frame = nullptr;  // a large frame's place in line (not a get())
  std::uint64_t token = 0;                  // the sender's rendezvous token
  fi_addr_t from = FI_ADDR_UNSPEC;
  int error = 0;
};

class ofi_memory final : public registered_memory {
 public:
  ofi_memory(fid_mr* mr, remote_region region) : mr_(mr), region_(std::move(region)) {}
  ~ofi_memory() override { fi_close(&mr_->fid); }
  remote_region describe() const override { return region_; }

 private:
  fid_mr* mr_;
  remote_region region_;
};

class ofi_transport final : public transport {
 public:
  ~ofi_transport() override {
    // The endpoint goes first: afterwards the provider touches none of the
    // buffers below; fi_ closes the rest.
    {
      std::optional<ofi::stuck_call_watch::guard> in_libfabric;
      if (watch_) in_libfabric.emplace(*watch_);
      fi_.close_endpoint();
    }
    if (receive_mr_) fi_close(&receive_mr_->fid);
    for (auto* s : send_slots_) release(s);  // spare, in flight or backlogged
    for (auto& [token, s] : rendezvous_out_) release(s);
    for (auto* s : spare_rendezvous_) release(s);
    for (auto* r : reads_) release(r);
    if (timer_fd_ >= 0) ::close(timer_fd_);
  }

  result<void> init(const options& opts) {
    default_provider_settings();
    FERRY_TRY_STATUS(fi_.open({.provider = opts.provider,
                               .caps = FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ,
                               .cq_format = FI_CQ_FORMAT_DATA,
                               .wait_fd = true}));
    provider_ = fi_.provider();
    watch_ = std::make_unique<ofi::stuck_call_watch>(name());
    mr_mode_ = fi_.info->domain_attr->mr_mode;
    inject_size_ = fi_.info->tx_attr->inject_size;
    if (fi_.wait_fd < 0) {  // no wait object (shm): a blocked driver looks again on a timer
      timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (timer_fd_ < 0) return make_error(errc::io_error, "timerfd_create failed");
    }
    FERRY_TRY(address_, fi_.address(msg::kMaxAddress));

    // The receive pool: one registration, kReceiveBuffers slots.
    receive_pool_.resize(kReceiveBuffers * kEagerMessage);
    FERRY_TRY(receive_mr_, register_region(receive_pool_.data(), receive_pool_.size(), FI_RECV));
    slots_.resize(kReceiveBuffers);
    for (std::size_t i = 0; i < kReceiveBuffers; ++i) {
      slots_[i].buffer = receive_pool_.data() + i * kEagerMessage;
      if (auto r = post_receive(&slots_[i]); r != 0) return ofi::error("post receive", r);
    }
    return {};
  }

  std::string name() const override { return "ofi/" + provider_; }
  std::vector<std::uint8_t> address() const override { return tag_address(name(), address_); }

  result<peer_index> connect(std::span<const std::uint8_t> tagged) override {
    FERRY_TRY(const auto address, untag_address(name(), tagged));
    if (address.empty() || address.size() > msg::kMaxAddress)
      return make_error(errc::bad_format, fmt::format("libfabric endpoint address of {} bytes", address.size()));
    FERRY_TRY(const fi_addr_t a, resolve(address));
    peers_.push_back(a);
    return static_cast<peer_index>(peers_.size() - 1);
  }

  void on_frame(frame_handler handler) override { handler_ = std::move(handler); }

  result<void> send(peer_index to, std::span<const std::uint8_t> frame) override {
    if (to >= peers_.size()) return make_error(errc::not_found, fmt::format("no libfabric peer {}", to));
    const ofi::stuck_call_watch::guard in_libfabric(*watch_);
    const fi_addr_t dest = peers_[to];
    const std::size_t length = msg::kHeaderSize + frame.size();
    // Small frames leave at once from a stack copy (inject needs no
    // registered memory and completes nothing): no allocation.
    if (clear(dest) && length <= inject_size_ && length <= kInjectScratch) {
      std::uint8_t scratch[kInjectScratch];
      msg::put_header(scratch, msg::kind::frame);
      std::memcpy(scratch + msg::kHeaderSize, frame.data(), frame.size());
      const auto r = fi_inject(fi_.ep, scratch, length, dest);
      if (r == 0) return {};
      if (r != -FI_EAGAIN) return ofi::error(fmt::format("send to peer {}", to), r);
    }
    if (length <= kEagerMessage) {
      FERRY_TRY(send_slot * s, take_send_slot(length));
      msg::put_header(s->bytes.data(), msg::kind::frame);
      std::memcpy(s->bytes.data() + msg::kHeaderSize, frame.data(), frame.size());
      return post_send(s, dest, to);
    }
    return send_rendezvous(to, frame, {});
  }

  result<void> send_parts(peer_index to, std::span<const std::uint8_t> head,
                          std::span<const std::uint8_t> data) override {
    // A bulk frame by rendezvous: copied once, from both parts into the
    // registered copy, where joining them first would copy the data twice.
    if (msg::kHeaderSize + head.size() + data.size() <= kEagerMessage || to >= peers_.size())
      return transport::send_parts(to, head, data);
    const ofi::stuck_call_watch::guard in_libfabric(*watch_);
    return send_rendezvous(to, head, data);
  }

  /// A large frame, `head` then `data`: it stays here, registered, until
  /// the peer has read it.
  result<void> send_rendezvous(peer_index to, std::span<const std::uint8_t> head, std::span<const std::uint8_t> data) {
    const fi_addr_t dest = peers_[to];
    if (head.size() + data.size() > wire::kMaxFrame)
      return make_error(errc::too_large, fmt::format("frame of {} bytes", head.size() + data.size()));
    FERRY_TRY(send_slot * copy, take_rendezvous_copy(head.size() + data.size()));
    std::memcpy(copy->bytes.data(), head.data(), head.size());
    if (!data.empty()) std::memcpy(copy->bytes.data() + head.size(), data.data(), data.size());
    const std::uint64_t token = next_token_++;
    msg::rendezvous rv{token, copy->length, remote_address(copy->bytes.data(), 0), fi_mr_key(copy->mr), address_};
    std::vector<std::uint8_t> encoded;
    msg::encode(rv, encoded);
    auto s = take_send_slot(encoded.size());
    if (!s) {
      give_back_rendezvous_copy(copy);
      return s.error();
    }
    std::memcpy((*s)->bytes.data(), encoded.data(), encoded.size());
    rendezvous_out_[token] = copy;
    if (auto sent = post_send(*s, dest, to); !sent) {
      rendezvous_out_.erase(token);
      give_back_rendezvous_copy(copy);
      return sent;
    }
    return {};
  }

  /// A registered buffer for a large frame of `length` bytes that peers
  /// read: a spare one if it is large enough (up to kSpareLargeBuffers are
  /// kept, for frames up to kReusedFrameBytes: the chunks of a bulk
  /// transfer), else a new one, rounded up to 64 KiB so that the next
  /// chunk's frame, a few bytes longer, fits it too. A new buffer for
  /// every large frame (allocated, registered, unregistered and freed) was
  /// often fresh memory: a put over libfabric moved 0.3-0.8 GB/s then
  /// (docs/architecture.md, "Bulk transfers reuse warm memory").
  result<send_slot*> take_rendezvous_copy(std::size_t length) {
    for (auto it = spare_rendezvous_.begin(); it != spare_rendezvous_.end(); ++it) {
      if ((*it)->bytes.size() < length) continue;
      send_slot* s = *it;
      spare_rendezvous_.erase(it);
      s->length = length;
      return s;
    }
    auto* s = new send_slot;
    constexpr std::size_t kRound = 64 << 10;
    s->bytes.resize(length <= kReusedFrameBytes ? (length + kRound - 1) / kRound * kRound : length);
    auto mr = register_region(s->bytes.data(), s->bytes.size(), FI_REMOTE_READ);
    if (!mr) {
      delete s;
      return mr.error();
    }
    s->mr = *mr;
    s->length = length;
    return s;
  }
  /// The peer has read it (or the frame never left): kept for the next
  /// large frame, or freed.
  void give_back_rendezvous_copy(send_slot* s) {
    if (s->bytes.size() <= kReusedFrameBytes && spare_rendezvous_.size() < kSpareLargeBuffers) {
      spare_rendezvous_.push_back(s);
    } else {
      release(s);
    }
  }

  unsigned progress() override {
    const ofi::stuck_call_watch::guard in_libfabric(*watch_);
    unsigned n = backlogged_ > 0 ? drain_backlogs() : 0;
    fi_cq_data_entry entries[kCompletionBatch];
    for (;;) {
      const auto got = fi_cq_read(fi_.cq, entries, kCompletionBatch);
      if (got == -FI_EAGAIN) break;
      if (got == -FI_EAVAIL) {
        on_error_completion();
        ++n;
        continue;
      }
      if (got < 0) break;
      for (long i = 0; i < got; ++i) on_completion(entries[i]);
      n += static_cast<unsigned>(got);
    }
    n += ordered_.deliver([this](std::span<const std::uint8_t> f) { deliver(f); });
    retry_receives();
    if (n > 0) next_poll_us_ = kFirstPollUs;
    return n;
  }

  int event_fd() const override { return fi_.wait_fd >= 0 ? fi_.wait_fd : timer_fd_; }
  std::uint64_t dropped_frames() const override { return dropped_.load(std::memory_order_relaxed); }

  bool arm() override {
    if (!unposted_.empty() || ordered_.ready() || sending_soon()) return false;
    if (fi_.wait_fd >= 0) {
      fid* f = &fi_.cq->fid;
      return fi_trywait(fi_.fabric, &f, 1) == 0;
    }
    std::uint64_t expirations;
    while (::read(timer_fd_, &expirations, sizeof expirations) > 0) {
    }
    itimerspec once{};
    once.it_value.tv_nsec = next_poll_us_ * 1000;
    ::timerfd_settime(timer_fd_, 0, &once, nullptr);
    next_poll_us_ = std::min(next_poll_us_ * 2, kLongestPollUs);
    return true;
  }

  result<std::unique_ptr<registered_memory>> register_memory(std::span<std::byte> memory) override {
    if (memory.empty()) return make_error(errc::invalid_argument, "registering 0 bytes");
    FERRY_TRY(fid_mr * mr, register_region(memory.data(), memory.size(), FI_REMOTE_READ));
    const std::uint64_t key = fi_mr_key(mr);
    if (key == FI_KEY_NOTAVAIL) {
      fi_close(&mr->fid);
      return make_error(errc::unsupported, fmt::format("libfabric provider {} uses raw MR keys", provider_));
    }
    remote_region region{reinterpret_cast<std::uint64_t>(memory.data()), memory.size(), std::vector<std::uint8_t>(8)};
    std::memcpy(region.key.data(), &key, 8);
    return std::unique_ptr<registered_memory>(std::make_unique<ofi_memory>(mr, std::move(region)));
  }

  result<void> get(peer_index from, const remote_region& region, std::uint64_t offset, std::span<std::byte> into,
                   int timeout_ms) override {
    if (from >= peers_.size()) return make_error(errc::not_found, fmt::format("no libfabric peer {}", from));
    if (offset > region.length || region.length - offset < into.size())
      return make_error(errc::out_of_bounds, fmt::format("get of [{}, +{}) outside a {}-byte region", offset,
                                                         into.size(), region.length));
    if (region.key.size() != 8)
      return make_error(errc::bad_format, fmt::format("libfabric key of {} bytes", region.key.size()));
    if (into.empty()) return {};
    const ofi::stuck_call_watch::guard in_libfabric(*watch_);
    std::uint64_t key;
    std::memcpy(&key, region.key.data(), 8);
    const std::uint64_t at = (mr_mode_ & FI_MR_VIRT_ADDR) ? region.address + offset : offset;
    FERRY_TRY(read_op * r, start_read(peers_[from], large_bytes(into.size()), at, key));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (r->st == read_op::state::pending) {
      progress();
      if (std::chrono::steady_clock::now() > deadline) {
        r->abandoned = true;  // freed when the provider completes it, or at teardown
        return make_error(errc::timeout, fmt::format("get from peer {} took over {} ms", from, timeout_ms));
      }
    }
    status outcome;
    if (r->st == read_op::state::done) std::memcpy(into.data(), r->bytes.data(), into.size());
    else outcome = ofi::error(fmt::format("read from peer {}", from), r->error);
    finish(r);
    if (!outcome.ok()) return outcome;
    return {};
  }

 private:
  static constexpr std::size_t kInjectScratch = 512;

  result<fid_mr*> register_region(void* base, std::size_t length, std::uint64_t access) {
    return fi_.register_region(base, length, access);
  }
  std::uint64_t remote_address(const void* base, std::uint64_t offset) const { return fi_.remote_address(base, offset); }

  result<fi_addr_t> resolve(std::span<const std::uint8_t> address) {
    std::vector<std::uint8_t> key(address.begin(), address.end());
    if (auto it = known_.find(key); it != known_.end()) return it->second;
    fi_addr_t a = FI_ADDR_UNSPEC;
    const int inserted = fi_av_insert(fi_.av, address.data(), 1, &a, 0, nullptr);
    if (inserted != 1) return make_error(errc::bad_format, "libfabric endpoint address not accepted by the provider");
    known_.emplace(std::move(key), a);
    if (a >= backlogs_.size()) backlogs_.resize(a + 1);
    return a;
  }

  long post_receive(receive_slot* s) {
    return fi_recv(fi_.ep, s->buffer, kEagerMessage, fi_mr_desc(receive_mr_), FI_ADDR_UNSPEC, &s->ctx);
  }
  void repost(receive_slot* s) {
    if (post_receive(s) != 0) unposted_.push_back(s);
  }
  void retry_receives() {
    while (!unposted_.empty() && post_receive(unposted_.front()) == 0) unposted_.pop_front();
  }

  result<send_slot*> take_send_slot(std::size_t length) {
    auto& spare = spare_sends_[slot_class(length)];
    send_slot* s;
    if (spare.empty()) {
      s = new send_slot;
      s->bytes.resize(kSlotBytes[slot_class(length)]);
      auto mr = register_region(s->bytes.data(), s->bytes.size(), FI_SEND);
      if (!mr) {
        delete s;
        return mr.error();
      }
      s->mr = *mr;
      send_slots_.push_back(s);
    } else {
      s = spare.back();
      spare.pop_back();
    }
    s->length = length;
    return s;
  }
  // Send buffers are reused (only the driving thread sends or completes):
  // a warm send allocates nothing.
  void give_back(send_slot* s) { spare_sends_[slot_class(s->bytes.size())].push_back(s); }
  // Which of the two sizes (kSlotBytes) a frame of `length` bytes is sent from.
  static std::size_t slot_class(std::size_t length) { return length <= kSmallSlot ? 0 : 1; }
  static void release(send_slot* s) {
    if (s->mr) fi_close(&s->mr->fid);
    delete s;
  }
  static void release(read_op* r) {
    if (r->mr) fi_close(&r->mr->fid);
    delete r;
  }

  bool clear(fi_addr_t dest) const { return backlogs_[dest].queue.empty(); }
  // Some backlog will likely move on the next progress(); a stuck one (a
  // dead peer) is retried when the driver wakes anyway, so it does not
  // keep the driver from sleeping.
  bool sending_soon() const {
    if (backlogged_ == 0) return false;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& b : backlogs_)
      if (!b.queue.empty() && now - b.since <= kRetryAfter) return true;
    return false;
  }

  result<void> post_send(send_slot* s, fi_addr_t dest, peer_index to) {
    s->to = dest;
    auto& b = backlogs_[dest];
    if (b.queue.empty()) {
      const auto r = fi_send(fi_.ep, s->bytes.data(), s->length, fi_mr_desc(s->mr), dest, &s->ctx);
      if (r == 0) return {};
      if (r != -FI_EAGAIN) {
        give_back(s);
        return ofi::error(fmt::format("send to peer {}", to), r);
      }
      b.since = std::chrono::steady_clock::now();
    } else if (b.bytes + s->bytes.size() > kMaxBacklogBytes) {
      give_back(s);
      return make_error(errc::peer_dead, fmt::format("libfabric: {} frames ({} bytes) wait for peer {}, which takes none",
                                                     b.queue.size(), b.bytes, to));
    }
    b.queue.push_back(s);  // leaves in order, from progress()
    b.bytes += s->bytes.size();
    ++backlogged_;
    return {};
  }

  // Post what waits, per peer in order; drop a peer's frames once it has
  // taken none for kStuckLimit.
  unsigned drain_backlogs() {
    unsigned n = 0;
    const auto now = std::chrono::steady_clock::now();
    for (auto& b : backlogs_) {
      if (!b.queue.empty() && now - b.since > kRetryAfter && now < b.next_try) continue;
      while (!b.queue.empty()) {
        send_slot* s = b.queue.front();
        const auto r = fi_send(fi_.ep, s->bytes.data(), s->length, fi_mr_desc(s->mr), s->to, &s->ctx);
        if (r == -FI_EAGAIN && now - b.since < kStuckLimit) {
          b.next_try = now + kRetryAfter;
          break;
        }
        b.queue.pop_front();
        b.bytes -= s->bytes.size();
        --backlogged_;
        b.since = now;
        if (r != 0) give_back(s);  // refused, or stuck too long: the frame is lost
        ++n;
      }
    }
    return n;
  }

  // Read `into.size()` bytes into `into` (kept by the read until it is finished).
  result<read_op*> start_read(fi_addr_t from, large_bytes&& into, std::uint64_t at, std::uint64_t key) {
    auto* r = new read_op;
    r->from = from;
    r->bytes = std::move(into);
    const std::size_t length = r->bytes.size();
    auto mr = register_region(r->bytes.data(), length, FI_READ);
    if (!mr) {
      delete r;
      return mr.error();
    }
    r->mr = *mr;
    const auto rc = fi_read(fi_.ep, r->bytes.data(), length, fi_mr_desc(r->mr), from, at, key, &r->ctx);
    if (rc != 0) {
      release(r);
      return ofi::error("read", rc);
    }
    reads_.push_back(r);
    return r;
  }
  void finish(read_op* r) {
    std::erase(reads_, r);
    release(r);
  }

  void on_completion(const fi_cq_data_entry& e) {
    auto* op = static_cast<operation*>(e.op_context);
    switch (op->op) {
      case operation::type::receive: {
        auto* slot = static_cast<receive_slot*>(op);
        on_message({slot->buffer, e.len});
        repost(slot);
        break;
      }
      case operation::type::send: {
        give_back(static_cast<send_slot*>(op));
        break;
      }
      case operation::type::read: on_read_done(static_cast<read_op*>(op), 0); break;
    }
  }

  void on_error_completion() {
    fi_cq_err_entry err{};
    if (fi_cq_readerr(fi_.cq, &err, 0) != 1 || err.op_context == nullptr) return;
    auto* op = static_cast<operation*>(err.op_context);
    switch (op->op) {
      case operation::type::receive: repost(static_cast<receive_slot*>(op)); break;  // e.g. truncated: dropped
      case operation::type::send: give_back(static_cast<send_slot*>(op)); break;
      case operation::type::read: on_read_done(static_cast<read_op*>(op), err.err ? err.err : FI_EIO); break;
    }
  }

  void on_read_done(read_op* r, int error) {
    r->st = error == 0 ? read_op::state::done : read_op::state::failed;
    r->error = error;
    if (r->abandoned) {
      finish(r);
      return;
    }
    if (r->frame == nullptr) return;  // its get() is waiting
    // Tell the sender it may free its copy (also after a failed read: it
    // will not be read again).
    std::uint8_t done[msg::kRendezvousDoneSize];
    msg::put_rendezvous_done(done, r->token);
    send_control(r->from, {done, sizeof done});
    ordered_delivery::fill(r->frame, error == 0 ? std::move(r->bytes) : large_bytes{});
    finish(r);
  }

  // A message straight from the provider's receive buffer.
  void on_message(std::span<const std::uint8_t> m) {
    auto k = msg::read_header(m);
    if (!k) {  // not ours: dropped (nothing to attribute it to)
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    switch (*k) {
      case msg::kind::frame: {
        const auto frame = m.subspan(msg::kHeaderSize);
        if (ordered_.empty()) deliver(frame);
        else ordered_.hold(frame);
        break;
      }
      case msg::kind::rendezvous: {
        auto rv = msg::decode_rendezvous(m);
        if (!rv) {  // malformed, or announces more than wire::kMaxFrame
          dropped_.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        auto from = resolve(rv->sender);
        if (!from) return;
        auto r = start_read(*from, ordered_.buffer(rv->length), rv->address, rv->key);
        if (!r) return;  // the sender's deadline reports the lost frame
        (*r)->frame = ordered_.reserve();  // later frames wait behind it: order is kept
        (*r)->token = rv->token;
        break;
      }
      case msg::kind::rendezvous_done: {
        auto token = msg::decode_rendezvous_done(m);
        if (!token) return;
        if (auto it = rendezvous_out_.find(*token); it != rendezvous_out_.end()) {
          give_back_rendezvous_copy(it->second);
          rendezvous_out_.erase(it);
        }
        break;
      }
    }
  }

  // A transport message of our own (not a frame): best effort, in order
  // with the frames to that peer.
  void send_control(fi_addr_t to, std::span<const std::uint8_t> m) {
    if (clear(to) && m.size() <= inject_size_ && fi_inject(fi_.ep, m.data(), m.size(), to) == 0) return;
    auto s = take_send_slot(m.size());
    if (!s) return;
    std::memcpy((*s)->bytes.data(), m.data(), m.size());
    (void)post_send(*s, to, 0);
  }

  void deliver(std::span<const std::uint8_t> frame) {
    // The handler is the member's (it may run a mobile call in place for
    // long): not a libfabric call, whichever guard delivers it.
    const ofi::stuck_call_watch::outside in_ferry(*watch_);
    if (handler_) handler_(frame);
  }

  ofi::endpoint fi_;  // destroyed last (declared first)
  std::unique_ptr<ofi::stuck_call_watch> watch_;  // set once the provider is known
  std::string provider_;
  std::uint64_t mr_mode_ = 0;
  std::size_t inject_size_ = 0;
  int timer_fd_ = -1;  // where the CQ has no wait fd
  long next_poll_us_ = kFirstPollUs;
  std::uint64_t next_token_ = 1;
  std::vector<std::uint8_t> address_;
  std::map<std::vector<std::uint8_t>, fi_addr_t> known_;  // endpoint address -> AV entry
  std::vector<fi_addr_t> peers_;
  frame_handler handler_;

  std::vector<std::uint8_t> receive_pool_;
  fid_mr* receive_mr_ = nullptr;
  std::vector<receive_slot> slots_;
  std::deque<receive_slot*> unposted_;

  std::vector<send_slot*> send_slots_;   // every eager send buffer, freed at teardown
  static constexpr std::size_t kSlotBytes[2] = {kSmallSlot, kEagerMessage};
  std::vector<send_slot*> spare_sends_[2];  // by slot_class
  std::vector<send_slot*> spare_rendezvous_;  // registered copies of large frames, read and done with
  // Frames that could not leave at once, per destination, posted in order
  // once the provider takes them.
  struct backlog {
    std::deque<send_slot*> queue;
    std::chrono::steady_clock::time_point since;     // when the head last moved
    std::chrono::steady_clock::time_point next_try;  // once stuck: not before
    std::size_t bytes = 0;                           // of the queued send buffers
  };
  std::vector<backlog> backlogs_;  // by AV index (FI_AV_TABLE: 0, 1, ...)
  std::size_t backlogged_ = 0;     // frames in all backlogs
  std::unordered_map<std::uint64_t, send_slot*> rendezvous_out_;  // large frames the peers still read
  std::vector<read_op*> reads_;
  ordered_delivery ordered_;
  std::atomic<std::uint64_t> dropped_{0};  // written by the driving thread, read by any
};

}  // namespace

result<std::unique_ptr<transport>> make_ofi_transport(const options& opts) {
  auto t = std::make_unique<ofi_transport>();
  FERRY_TRY_STATUS(t->init(opts));
  return std::unique_ptr<transport>(std::move(t));
}

}  // namespace ferry::transport
