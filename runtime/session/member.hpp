// A process's place in the cluster: its transport, the progress loop that
// drives it, and the table from member index to transport peer.
//
// Members are numbered: data nodes 0..N-1, client processes N.. . Any thread
// may send(); frames are handled in arrival order by whichever thread is
// *driving* the member at the time.
//
// Driving: the transport is used by one thread at a time, the driver, which
// owns the progress-side state (peers, handlers, posted work). The progress
// thread drives whenever nobody else does. A thread that wants an answer
// (a client waiting on a future) drives itself through drive_once() instead
// of sleeping until the progress thread wakes it, and a thread that sends
// while nobody drives sends directly: on the warm path a frame is never
// handed from one thread to another. The progress thread spins while there is
// work and for a short grace period (yielding the CPU each turn), then blocks
// on the transport's and its own queue's descriptors: with more processes than
// cores an idle member costs nothing (docs/platform-notes.md: pure busy polling collapses to
// ~100 chases/s there).
//
// Liveness: every member heartbeats the members it is connected to; one not
// heard from for `peer_timeout` is declared dead (checked at each tick,
// which also notes who was heard since the last one, so a verdict may come
// up to one `heartbeat` later than that; UCX over shm reports no
// error for a dead peer) and the on_peer_dead handler runs: what waits on it
// fails at once. A verdict is not final: a member declared dead that is
// heard from again (it was paused, or busy, not gone) is alive again and the
// on_peer_alive handler runs; heartbeats keep going to it for
// `revive_window` so that it can hear us too. A member that was not driving
// its own progress for a while (paused, or a long call held its driving
// thread) does not blame its peers for the silence it did not listen to:
// their timeouts restart when it resumes. Work that holds the driving thread
// for long (a mobile call run in place that turned out long) calls
// beat_while_busy(), so that its peers keep hearing this member meanwhile.
// One peer's verdict never touches another's.
//
// Restarts: a member that comes back (same index, new process) says hello
// with its new address. learn() replaces the endpoint; if the old
// incarnation was not yet declared dead, it is declared dead first, so what
// waited on it fails at once. A dead member comes back the same way.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <ferry/status.hpp>

#include "transport/transport.hpp"
#include "wire/frames.hpp"

namespace ferry::session {

using wire::node_index;

struct member_config {
  transport::options transport;
  node_index self = wire::kNoNode;
  /// Spin at least this long after the last event before blocking; the
  /// progress thread spins longer, up to kLongestSpin, while its sleeps end
  /// soon after they begin (member::loop()).
  std::chrono::microseconds spin{50};
  /// Of that spin, poll this long without yielding the CPU (a yield is a
  /// system call: costly when an answer is microseconds away, but needed
  /// when more busy processes than cores share this machine): see
  /// poll_budget(). None while the machine is crowded by others
  /// (machine_load: the member samples it as it drives).
  std::chrono::microseconds poll_without_yield{0};
  /// Name of the progress thread (top -H, gdb; at most 15 characters).
  std::string thread_name = "ferry-session";
  /// Heartbeat period, and silence after which a peer is declared dead.
  std::chrono::milliseconds heartbeat{100};
  std::chrono::milliseconds peer_timeout{1500};
  /// How long a member declared dead still gets heartbeats (so that one
  /// that was only paused hears us and comes back).
  std::chrono::milliseconds revive_window{60000};
  /// When the transport reports this process deaf (it can hear no peer
  /// again: transport::deaf()), end the process with SIGABRT after saying
  /// why, so that it can be restarted (nodes); otherwise (clients) every
  /// peer is declared dead, so calls fail with peer_dead at once, the
  /// member stops its heartbeats, and sends fail with io_error naming why.
  bool abort_when_deaf = false;
};

/// How long to poll without yielding when `processes` ferry processes (nodes
/// and clients of one cluster) share this machine: 12 µs while each can
/// have a core, zero when they outnumber the cores (then every idle turn
/// yields, or a multi-hop walk crawls at the scheduler's pace).
std::chrono::microseconds poll_budget(std::uint32_t processes);

class member {
 public:
  using frame_handler = std::function<void(wire::frame&&)>;
  /// A frame that ends with its data bytes (object_put, object_data:
  /// wire::data_bytes), decoded without them, and the data: a view into
  /// the transport's receive buffer, valid only during the call.
  using data_frame_handler = std::function<void(const wire::frame&, std::span<const std::uint8_t> data)>;

  static result<std::unique_ptr<member>> create(member_config config);
  /// Stops the progress thread; frames still queued are dropped.
  ~member();

  [[nodiscard]] node_index self() const { return config_.self; }
  void set_self(node_index self) { config_.self = self; }
  [[nodiscard]] std::vector<std::uint8_t> address() const { return address_; }
  [[nodiscard]] std::string transport_name() const { return transport_->name(); }

  /// Handlers; set before start(). Both run on the driving thread.
  void on_frame(frame_handler handler) { handler_ = std::move(handler); }
  /// With this handler, frames that end with their data go to it instead
  /// of on_frame's, their data not copied out of the transport's buffer: for
  /// a receiver that uses the bytes at once (the client copies a get's
  /// chunk straight into its caller's memory), one copy of each chunk fewer.
  void on_data_frame(data_frame_handler handler) { data_handler_ = std::move(handler); }
  void on_peer_dead(std::function<void(node_index)> handler) { dead_handler_ = std::move(handler); }
  /// A member declared dead was heard from again (same address: not a restart).
  void on_peer_alive(std::function<void(node_index)> handler) { alive_handler_ = std::move(handler); }
  /// What this member reports with each heartbeat (a node's load: placement
  /// reads it); without one it reports zeros. Runs on the driving thread.
  void report_load(std::function<wire::load_body()> source) { load_source_ = std::move(source); }
  /// Whether this process's own busy threads (a node's executors running
  /// calls) hold every core it may run on. While `taken()` says so, an idle
  /// progress thread blocks on the transport at once instead of spinning:
  /// its yields would hand the core to a busy executor until the next
  /// scheduler tick (4 ms here), and a frame arriving meanwhile would wait
  /// that long, while a blocked thread is woken when the frame comes
  /// (docs/architecture.md, "Threads"). Runs on the progress thread.
  void yield_cores_while(std::function<bool()> taken) { cores_taken_ = std::move(taken); }
  /// A peer's heartbeat arrived with its load report.
  void on_load(std::function<void(node_index, const wire::load_body&)> handler) { load_handler_ = std::move(handler); }
  /// Start the progress thread.
  void start();
  /// Stop the progress thread (idempotent). Work posted afterwards is kept
  /// and dropped with the member; a server stops its member before tearing
  /// down what the handlers use.
  void stop();

  /// Connect to member `index`: learn() from any thread, blocking until done.
  result<void> connect(node_index index, std::vector<std::uint8_t> address);
  [[nodiscard]] bool connected(node_index index) const;

  /// Send a frame (any thread). Frames to self are handled locally. Sent
  /// directly when the caller drives or nobody does, else queued for the
  /// driver; either way frames from one thread leave in order. Errors
  /// (unknown or dead member) come back as the return value when detected
  /// before queuing; later send failures mark the peer dead.
  status send(node_index to, const wire::frame& f);
  /// The same for a bulk frame whose data bytes stay where they are (an
  /// object_put or object_data frame with its bytes empty,
  /// wire::encode_head_into): the transport copies them once (a hand-off
  /// to the driver's queue once more), not first into the frame and then
  /// into its encoding. Errors: also those of wire::encode_head_into.
  status send(node_index to, const wire::frame& f, std::span<const std::uint8_t> data);
  /// Writes a bulk frame's `size` data bytes into the span it is given
  /// (exactly `size` bytes), or fails (then nothing is sent).
  using data_writer = std::function<status(std::span<std::uint8_t> into)>;
  /// The same for a bulk frame whose data `write` puts in place (a node
  /// reading a get's range out of its store): the frame is built whole in
  /// a buffer this thread keeps, the data written straight after its head,
  /// and handed to the driver's queue, when another thread drives, by
  /// exchanging buffers rather than copying. Errors: write's (nothing
  /// sent), and send()'s.
  status send_written(node_index to, const wire::frame& f, std::size_t size, const data_writer& write);
  /// Run `fn` on the driving thread, after the work posted before it.
  void post(std::function<void()> fn);
  /// Is the calling thread the driver?
  [[nodiscard]] bool driving() const { return driver_ == this; }
  /// From the driving thread while something it runs holds it (a mobile
  /// call in place that runs long): send the heartbeats that are due, and
  /// nothing else (no progress, no frame handled, no peer declared dead), so
  /// that the peers do not declare this member dead meanwhile. Elsewhere, or
  /// when no heartbeat is due: nothing (a clock read).
  void beat_while_busy();
  /// If nobody else drives, run one turn of progress (transport events,
  /// posted work, heartbeats) on the calling thread and return true; else
  /// return false at once. Must not be called from a frame handler.
  bool drive_once();
  /// drive_once(), and if that turn found nothing to do, block until a frame
  /// arrives, work is posted or `max` passes: a caller whose answer is some
  /// time away waits without taking a core from the processes that work on
  /// it. False at once if another thread drives. Not from a frame handler.
  bool drive_or_sleep(std::chrono::microseconds max);

  /// How long the progress thread now spins after its last event before it
  /// blocks: member_config::spin, longer while frames come close together
  /// (up to 2 ms; each sleep that work — a frame other than a heartbeat, or
  /// posted work — ends soon doubles it, each other one halves it).
  [[nodiscard]] std::chrono::microseconds progress_spin() const {
    return std::chrono::microseconds(loop_spin_us_.load(std::memory_order_relaxed));
  }
  /// Times the progress thread, idle, gave up its core while spinning
  /// (none while yield_cores_while() says the cores are taken).
  [[nodiscard]] std::uint64_t idle_yields() const { return idle_yields_.load(std::memory_order_relaxed); }
  /// Frames dropped because they did not decode (bad input from a peer).
  [[nodiscard]] std::uint64_t bad_frames() const { return bad_frames_.load(); }
  /// Frames the transport dropped unread (larger than wire::kMaxFrame, or a
  /// malformed transport message).
  [[nodiscard]] std::uint64_t dropped_frames() const { return transport_->dropped_frames(); }

  /// What learn() did.
  enum class change { unchanged, added, replaced };
  /// A hello said member `index` is at `address`; call from the frame handler
  /// (the thread that drives the transport). New member: connect (`added`).
  /// Known at another address, or declared dead: it restarted — declare the
  /// old incarnation dead (on_peer_dead runs) unless it already was, and
  /// connect to the new address (`replaced`). Errors: those of connect; the
  /// old endpoint then stays as it was.
  result<change> learn(node_index index, std::vector<std::uint8_t> address);
  /// Members currently connected and not declared dead (any thread).
  [[nodiscard]] std::vector<node_index> live_members() const;

 private:
  explicit member(member_config config) : config_(std::move(config)) {}
  void loop();
  bool try_drive();
  void stop_driving();
  /// One turn of the driver: transport progress, posted work, heartbeats.
  unsigned turn();
  /// Called while driving, returns not driving: block until the transport
  /// or a post() wakes this thread, or `max` passes (at least 1 ms).
  void sleep_for_events(std::chrono::milliseconds max);
  unsigned drain_posted();
  void tick();
  /// Encode this member's heartbeat (with its load) into beat_.
  const std::vector<std::uint8_t>& encode_beat();
  void handle_bytes(std::span<const std::uint8_t> bytes);
  struct peer_state;
  void declare_dead(node_index index, peer_state& p);
  // The transport said this process can hear no one again (member_config::abort_when_deaf).
  void become_deaf(std::string why);
  void revive(node_index index, peer_state& p);
  status send_now(node_index to, std::span<const std::uint8_t> bytes, std::span<const std::uint8_t> data = {});
  /// The same for a whole frame whose buffer the transport may take
  /// (transport::send_taking), leaving another in `whole`.
  status send_now_taking(node_index to, std::vector<std::uint8_t>& whole);
  /// send()'s checks for a peer this thread cannot send to itself (another
  /// thread drives): unknown or dead, from the driver's copy of the table.
  status check_known(node_index to);
  /// The one way a frame for another member leaves (send(), send_written()):
  /// `now()` sends it from this thread when it drives or can take the
  /// transport (after the frames queued before it), else `queue()` hands it
  /// to the driver, once `to` is known and alive; a deaf member sends nothing.
  template <class Now, class Queue>
  status leave(node_index to, Now&& now, Queue&& queue);
  /// A frame for this member: handled on the driving thread, after the work
  /// posted before it.
  void post_to_self(wire::frame&& whole);

  member_config config_;
  std::unique_ptr<transport::transport> transport_;
  std::vector<std::uint8_t> address_;
  frame_handler handler_;
  data_frame_handler data_handler_;
  std::function<void(node_index)> dead_handler_;
  std::function<void(node_index)> alive_handler_;
  std::function<wire::load_body()> load_source_;
  std::function<bool()> cores_taken_;
  std::function<void(node_index, const wire::load_body&)> load_handler_;

  // Driver state (touched only by the thread that drives).
  struct peer_state {
    transport::peer_index peer;
    std::chrono::steady_clock::time_point last_heard;  ///< as of the last tick that found `heard`
    bool dead = false;
    std::vector<std::uint8_t> address;  ///< what learn() compares a hello's address with
    std::chrono::steady_clock::time_point dead_since{};
    bool heard = false;  ///< a frame came since the last tick
  };
  std::unordered_map<node_index, peer_state> peers_;
  std::chrono::steady_clock::time_point next_tick_{};
  std::chrono::steady_clock::time_point last_tick_{};
  std::vector<std::uint8_t> beat_;  // the heartbeat frame, encoded into again each tick
  static constexpr unsigned kTurnsPerClockRead = 64;
  /// The progress thread's spin (loop()): from config_.spin, doubled after
  /// each sleep that work ended within kLongestSpin (the next frame was
  /// that close: waking costs 30-40 µs here, and more processes than cores
  /// wait longer for the CPU), halved after each that lasted longer, ran
  /// to its timeout or was ended by a heartbeat. Under traffic it spans the
  /// gaps between frames; with only heartbeats (one per peer per 100 ms) it
  /// stays at config_.spin, however close a peer's heartbeats come after
  /// this member's own (members started together tick in step). An attempt
  /// to sleep that the transport refuses (arm(): UCX has a sender's wake-up
  /// signal left, often for a frame already handled) halves it too, and
  /// over UCX shm from several peers most attempts end so: the thread then
  /// spins on at a short spin rather than sleeping (docs/architecture.md,
  /// "Waiting").
  static constexpr std::chrono::microseconds kLongestSpin{2000};
  std::atomic<std::int64_t> loop_spin_us_{0};  // written by the progress thread (progress_spin())
  std::atomic<std::uint64_t> idle_yields_{0};  // written by the progress thread (idle_yields())
  /// How often the progress thread looks whether callers still drive.
  static constexpr std::chrono::milliseconds kCallersDriveCheck{2};
  /// Frames up to this size leave their buffers (encode and decode) with the
  /// thread for the next frame; larger ones give them back.
  static constexpr std::size_t kReusedFrameBytes = transport::kReusedFrameBytes;
  unsigned turns_ = 0;
  /// Frames other than heartbeats, and posted work, the driver handled (what
  /// lengthens the spin: loop()).
  std::uint64_t work_handled_ = 0;

  // Cross-thread state.
  mutable std::mutex mu_;
  /// Work handed to the driver, kept in order: a task, or a frame that its
  /// sender could not send itself (another thread was driving). Entries are
  /// reused, and so are their frame buffers: once the queue has grown to the
  /// most frames ever waiting at once, a hand-off allocates nothing.
  struct posted_entry {
    std::function<void()> task;          ///< empty: a frame
    node_index to = 0;                   ///< where the frame goes
    std::vector<std::uint8_t> frame;     ///< encoded; its capacity kept
  };
  std::vector<posted_entry> posted_;     // [0, posted_count_) wait; guarded by mu_
  std::size_t posted_count_ = 0;         // guarded by mu_
  std::atomic<bool> has_posted_{false};  // posted_count_ > 0 (checked without the lock)
  /// The batch the driver is working through (swapped with posted_).
  std::vector<posted_entry> draining_;
  bool draining_now_ = false;  // driver only
  static constexpr std::size_t kPreparedHandOffs = 16;
  static constexpr std::size_t kPreparedFrameBytes = 512;
  posted_entry& next_posted();  // with mu_ held
  void wake();
  /// Hand frame `f` for `to` (with its `data`, if sent in two parts) to the
  /// driver: a copy leaves in order with posted work.
  status hand_off(node_index to, const wire::frame& f, std::span<const std::uint8_t> data);
  /// Hand the encoded frame in `whole` to the driver: it takes the buffer,
  /// and `whole` gets the one its queue entry held (warm, or empty).
  void hand_off_whole(node_index to, std::vector<std::uint8_t>& whole);
  std::atomic<std::uint64_t> drives_{0};  // drive_once() turns taken by other threads
  std::atomic<int> sleeping_callers_{0};   // callers blocked in drive_or_sleep()
  std::unordered_map<node_index, bool> known_;  // connected members (for connected())
  int wake_fd_ = -1;
  std::atomic<int> sleepers_{0};  // threads blocked in sleep_for_events(): wake() writes wake_fd_ for them
  std::atomic<bool> stop_{false};
  std::string deaf_;                     // why this member can hear no one (set once, by the driver)
  std::atomic<bool> is_deaf_{false};     // deaf_ is set (checked by senders without the driver)
  std::atomic<bool> driven_{false};
  static thread_local const member* driver_;
  std::atomic<std::uint64_t> bad_frames_{0};
  std::thread thread_;
};

}  // namespace ferry::session
