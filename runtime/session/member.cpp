#include "member.hpp"

#include "machine_load.hpp"

#include <pthread.h>

#include <array>

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <future>

#include <fmt/format.h>

#include "core/thread_reused.hpp"

namespace ferry::session {

using clock = std::chrono::steady_clock;

thread_local const member* member::driver_ = nullptr;

result<std::unique_ptr<member>> member::create(member_config config) {
  std::unique_ptr<member> m(new member(std::move(config)));
  FERRY_TRY(m->transport_, transport::transport::create(m->config_.transport));
  m->address_ = m->transport_->address();
  m->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  for (auto* queue : {&m->posted_, &m->draining_}) {  // hand-offs on a warm path find buffers ready
    queue->resize(kPreparedHandOffs);
    for (auto& e : *queue) e.frame.reserve(kPreparedFrameBytes);
  }
  if (m->wake_fd_ < 0) return make_error(errc::io_error, "eventfd failed");
  m->transport_->on_frame([raw = m.get()](std::span<const std::uint8_t> bytes) { raw->handle_bytes(bytes); });
  return m;
}

member::~member() {
  stop();
  transport_.reset();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::chrono::microseconds poll_budget(std::uint32_t processes) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return processes <= cores ? std::chrono::microseconds(12) : std::chrono::microseconds(0);
}

void member::stop() {
  stop_ = true;
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
}

void member::start() {
  thread_ = std::thread([this] { loop(); });
  ::pthread_setname_np(thread_.native_handle(), config_.thread_name.substr(0, 15).c_str());
}

result<void> member::connect(node_index index, std::vector<std::uint8_t> address) {
  // learn() on the driving thread: ours if nobody drives, else the driver's.
  if (!thread_.joinable() || driving()) return learn(index, std::move(address)).error();
  if (try_drive()) {
    auto r = learn(index, std::move(address));
    stop_driving();
    return r.error();
  }
  auto done = std::make_shared<std::promise<status>>();
  auto fut = done->get_future();
  post([this, done, index, address = std::move(address)]() mutable { done->set_value(learn(index, std::move(address)).error()); });
  if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return make_error(errc::timeout, fmt::format("connecting to member {} took over 10 s", index));
  return fut.get();
}

result<member::change> member::learn(node_index index, std::vector<std::uint8_t> address) {
  auto it = peers_.find(index);
  if (it != peers_.end() && !it->second.dead && it->second.address == address) return change::unchanged;
  FERRY_TRY(const auto peer, transport_->connect(address));
  const bool known = it != peers_.end();
  if (known && !it->second.dead) declare_dead(index, it->second);  // restarted before its silence was noticed
  peers_[index] = peer_state{peer, clock::now(), false, std::move(address), {}};
  {
    std::lock_guard lock(mu_);
    known_[index] = true;
  }
  return known ? change::replaced : change::added;
}

void member::declare_dead(node_index index, peer_state& p) {
  p.dead = true;
  p.dead_since = clock::now();
  {
    std::lock_guard lock(mu_);
    known_[index] = false;
  }
  if (dead_handler_) dead_handler_(index);
}

std::vector<node_index> member::live_members() const {
  std::lock_guard lock(mu_);
  std::vector<node_index> out;
  for (const auto& [index, alive] : known_)
    if (alive) out.push_back(index);
  return out;
}

bool member::connected(node_index index) const {
  std::lock_guard lock(mu_);
  auto it = known_.find(index);
  return it != known_.end() && it->second;
}

status member::send(node_index to, const wire::frame& f) { return send(to, f, {}); }

status member::send(node_index to, const wire::frame& f, std::span<const std::uint8_t> data) {
  if (to == config_.self) {
    wire::frame whole = f;
    if (!data.empty()) {  // the data put back in place
      auto* bytes = wire::data_bytes(whole);
      if (bytes == nullptr || !bytes->empty())
        return make_error(errc::invalid_argument, fmt::format("a {} frame cannot take data bytes sent apart",
                                                              wire::to_string(f.type)));
      bytes->assign(data.begin(), data.end());
    }
    post_to_self(std::move(whole));
    return {};
  }
  // One encode buffer per thread, reused: no allocation once it has grown.
  // Frames posted earlier are drained before this one is encoded (they may
  // send, and use this buffer, themselves).
  thread_local std::vector<std::uint8_t> bytes;
  auto encode_and_send = [&]() -> status {
    if (data.empty()) {
      wire::encode_into(f, bytes);
    } else if (auto s = wire::encode_head_into(f, data.size(), bytes); !s.ok()) {
      return s;
    }
    auto s = send_now(to, bytes, data);
    if (bytes.capacity() > kReusedFrameBytes) std::vector<std::uint8_t>().swap(bytes);  // not the largest one ever
    return s;
  };
  // Handed to the driver: copied into its queue, into a buffer kept from
  // earlier hand-offs.
  return leave(to, encode_and_send, [&] { return hand_off(to, f, data); });
}

status member::send_written(node_index to, const wire::frame& f, std::size_t size, const data_writer& write) {
  // The head is encoded apart and copied in front of the data: encoding
  // into the kept buffer would shrink it, and growing it again would zero
  // the data's place before `write` fills it. Work drained before the frame
  // leaves may send this way too, on this thread: it gets a buffer of its own.
  thread_local std::vector<std::uint8_t> head;
  core::thread_reused<std::vector<std::uint8_t>, struct send_written_image> image({});
  auto& whole = *image;
  if (auto s = wire::encode_head_into(f, size, head); !s.ok()) return s;
  whole.resize(head.size() + size);
  std::memcpy(whole.data(), head.data(), head.size());
  if (auto s = write(std::span(whole).subspan(head.size())); !s.ok()) return s;
  status sent;
  if (to == config_.self) {
    auto frame = wire::decode(whole);
    if (!frame) return frame.error();
    post_to_self(std::move(*frame));
  } else {
    sent = leave(
        to, [&] { return send_now_taking(to, whole); },
        [&] {
          hand_off_whole(to, whole);
          return status{};
        });
  }
  if (whole.capacity() > kReusedFrameBytes) std::vector<std::uint8_t>().swap(whole);  // not the largest one ever
  return sent;
}

void member::post_to_self(wire::frame&& whole) {
  post([this, whole = std::move(whole)] {
    if (handler_) handler_(wire::frame(whole));
  });
}

template <class Now, class Queue>
status member::leave(node_index to, Now&& now, Queue&& queue) {
  if (is_deaf_.load(std::memory_order_acquire))
    return make_error(errc::io_error, fmt::format("member {} cannot send: {}", config_.self, deaf_));
  if (driving()) return now();
  if (try_drive()) {
    drain_posted();  // frames queued before this one leave first
    auto s = now();
    stop_driving();
    return s;
  }
  // Another thread holds the transport (for one progress turn at most): the
  // frame goes to the driver's queue and leaves in order with the work
  // posted before it.
  if (auto s = check_known(to); !s.ok()) return s;
  return queue();
}

status member::check_known(node_index to) {
  // (A driving sender learns an unknown or dead peer from send_now, which
  // reads the driver's own peer table; others from its copy.)
  std::lock_guard lock(mu_);
  auto it = known_.find(to);
  if (it == known_.end()) return make_error(errc::not_found, fmt::format("member {} is not connected", to));
  if (!it->second) return make_error(errc::peer_dead, fmt::format("member {} is dead", to));
  return {};
}

bool member::try_drive() {
  if (driven_.load(std::memory_order_relaxed) || driven_.exchange(true, std::memory_order_acquire)) return false;
  driver_ = this;
  return true;
}

void member::stop_driving() {
  driver_ = nullptr;
  driven_.store(false, std::memory_order_release);
}

bool member::drive_once() {
  if (!try_drive()) return false;
  drives_.fetch_add(1, std::memory_order_relaxed);
  turn();
  stop_driving();
  return true;
}

unsigned member::turn() {
  const unsigned n = transport_->progress() + drain_posted();
  if (++turns_ % kTurnsPerClockRead == 0) tick();  // reading the clock every turn costs more than a turn
  return n;
}

status member::send_now(node_index to, std::span<const std::uint8_t> bytes, std::span<const std::uint8_t> data) {
  auto it = peers_.find(to);
  if (it == peers_.end()) return make_error(errc::not_found, fmt::format("member {} is not connected", to));
  if (it->second.dead) return make_error(errc::peer_dead, fmt::format("member {} is dead", to));
  auto sent = data.empty() ? transport_->send(it->second.peer, bytes) : transport_->send_parts(it->second.peer, bytes, data);
  return sent ? status{} : sent.error();
}

status member::send_now_taking(node_index to, std::vector<std::uint8_t>& whole) {
  auto it = peers_.find(to);
  if (it == peers_.end()) return make_error(errc::not_found, fmt::format("member {} is not connected", to));
  if (it->second.dead) return make_error(errc::peer_dead, fmt::format("member {} is dead", to));
  auto sent = transport_->send_taking(it->second.peer, whole);
  return sent ? status{} : sent.error();
}

member::posted_entry& member::next_posted() {
  if (posted_count_ == posted_.size()) posted_.emplace_back();
  return posted_[posted_count_++];
}

// post()/hand_off() store has_posted_ then read sleepers_; a sleeper counts
// itself in sleepers_ then reads has_posted_. Each store must be seen before the other
// side's load (store-load order: seq_cst), or both could miss the other and
// the work wait for the next tick.
void member::wake() {
  if (sleepers_.load(std::memory_order_seq_cst) != 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
}

void member::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    next_posted().task = std::move(fn);
    has_posted_.store(true, std::memory_order_seq_cst);
  }
  wake();
}

status member::hand_off(node_index to, const wire::frame& f, std::span<const std::uint8_t> data) {
  thread_local std::vector<std::uint8_t> head;  // a bulk frame's few bytes before its data
  if (!data.empty())
    if (auto s = wire::encode_head_into(f, data.size(), head); !s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    auto& e = next_posted();
    e.to = to;
    if (data.empty()) {
      wire::encode_into(f, e.frame);
    } else {
      e.frame.assign(head.begin(), head.end());
      e.frame.insert(e.frame.end(), data.begin(), data.end());
    }
    has_posted_.store(true, std::memory_order_seq_cst);
  }
  wake();
  return {};
}

void member::hand_off_whole(node_index to, std::vector<std::uint8_t>& whole) {
  {
    std::lock_guard lock(mu_);
    auto& e = next_posted();
    e.to = to;
    e.frame.swap(whole);
    has_posted_.store(true, std::memory_order_seq_cst);
  }
  wake();
}

unsigned member::drain_posted() {
  if (draining_now_ || !has_posted_.load(std::memory_order_acquire)) return 0;
  std::size_t n = 0;
  {
    std::lock_guard lock(mu_);
    draining_.swap(posted_);
    n = posted_count_;
    posted_count_ = 0;
    has_posted_.store(false, std::memory_order_relaxed);
  }
  draining_now_ = true;
  for (std::size_t i = 0; i < n; ++i) {
    auto& e = draining_[i];
    if (e.task) {
      const auto task = std::move(e.task);
      e.task = nullptr;
      task();
    } else {
      (void)send_now_taking(e.to, e.frame);  // lost like any failed send: the call's deadline or a verdict reports it
      if (e.frame.capacity() > kReusedFrameBytes) std::vector<std::uint8_t>().swap(e.frame);
    }
  }
  draining_now_ = false;
  work_handled_ += n;
  return static_cast<unsigned>(n);
}

void member::handle_bytes(std::span<const std::uint8_t> bytes) {
  // One frame per frame type and thread, decoded into again and again: a
  // warm frame reuses the buffers of the last one of its type (a handler
  // that keeps a frame moves it out; the next one of that type allocates).
  thread_local std::array<wire::frame, 32> by_type;
  const std::uint8_t type = bytes.size() >= wire::kFrameHeaderSize ? bytes[3] : 0;
  wire::frame& f = by_type[type < by_type.size() ? type : 0];
  std::span<const std::uint8_t> data;  // a bulk frame's data, left in `bytes` for data_handler_
  if (auto s = wire::decode_into(bytes, f, data_handler_ ? &data : nullptr); !s.ok()) {
    ++bad_frames_;
    // If the header is intact, tell the sender what was wrong with its frame.
    if (bytes.size() >= wire::kFrameHeaderSize) {
      node_index source;
      std::uint64_t call;
      std::memcpy(&source, bytes.data() + 4, 4);
      std::memcpy(&call, bytes.data() + 8, 8);
      if (peers_.contains(source))
        (void)send_now(source, wire::encode({wire::frame_type::error, config_.self, call,
                                            wire::error_body{s.code(), s.message()}}));
    }
    return;
  }
  if (auto it = peers_.find(f.source); it != peers_.end()) {
    auto& p = it->second;
    p.heard = true;  // tick() stamps it: a clock read per frame cost more than the flag
    // Heard from again at the same address (a hello from a new address is
    // a restart: learn() handles it): it was paused or busy, not gone.
    if (p.dead && f.type != wire::frame_type::hello) revive(f.source, p);
  }
  if (f.type == wire::frame_type::heartbeat) {
    if (load_handler_) load_handler_(f.source, std::get<wire::load_body>(f.body));
    return;  // not work: loop()'s spin does not lengthen for it
  }
  ++work_handled_;
  if (data_handler_ && wire::data_bytes(f) != nullptr) return data_handler_(f, data);
  if (handler_) handler_(std::move(f));
  // Keep small frames' buffers for reuse, not a large frame's: a thread
  // should not hold on to the biggest frame it ever saw.
  if (bytes.size() > kReusedFrameBytes) f = wire::frame{};
}

void member::revive(node_index index, peer_state& p) {
  p.dead = false;
  {
    std::lock_guard lock(mu_);
    known_[index] = true;
  }
  if (alive_handler_) alive_handler_(index);
}

void member::tick() {
  const auto now = clock::now();
  machine_load::process().sample(now);  // is the machine crowded (how long its pollers poll)? every 10 ms at most
  if (now < next_tick_) return;
  if (!is_deaf_.load(std::memory_order_relaxed))
    if (auto why = transport_->deaf(); !why.empty()) become_deaf(std::move(why));
  if (is_deaf_.load(std::memory_order_relaxed)) return;  // no heartbeats: peers see this member gone
  // This member did not drive for a while (stopped, or a long call held the
  // driving thread): the silence of its peers meanwhile is its own deafness.
  const bool was_away = last_tick_ != clock::time_point{} && now - last_tick_ > 3 * config_.heartbeat;
  last_tick_ = now;
  next_tick_ = now + config_.heartbeat;
  const auto& beat = encode_beat();
  for (auto& [index, p] : peers_) {
    if (p.heard) p.last_heard = now;  // heard since the last tick (at most a heartbeat ago)
    p.heard = false;
    if (was_away) p.last_heard = std::max(p.last_heard, now);
    if (p.dead) {
      if (now - p.dead_since < config_.revive_window) (void)transport_->send(p.peer, beat);
      continue;
    }
    if (now - p.last_heard > config_.peer_timeout) {
      declare_dead(index, p);
      continue;
    }
    (void)transport_->send(p.peer, beat);
  }
}

void member::become_deaf(std::string why) {
  if (config_.abort_when_deaf) {
    const auto message = fmt::format("ferry: member {}: {}. Aborting, so that it can be restarted.\n", config_.self, why);
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, message.data(), message.size());
    std::abort();
  }
  deaf_ = std::move(why);
  is_deaf_.store(true, std::memory_order_release);
  for (auto& [index, p] : peers_)
    if (!p.dead) declare_dead(index, p);
}

void member::beat_while_busy() {
  if (!driving() || is_deaf_.load(std::memory_order_relaxed)) return;
  const auto now = clock::now();
  if (now < next_tick_) return;
  // last_tick_ stays: when the driver is back, tick() sees it was away and
  // restarts its peers' timeouts (it heard none of them meanwhile).
  next_tick_ = now + config_.heartbeat;
  const auto& beat = encode_beat();
  for (auto& [index, p] : peers_)
    if (!p.dead) (void)transport_->send(p.peer, beat);
}

const std::vector<std::uint8_t>& member::encode_beat() {
  wire::encode_into({wire::frame_type::heartbeat, config_.self, 0, load_source_ ? load_source_() : wire::load_body{}},
                    beat_);
  return beat_;
}

void member::sleep_for_events(std::chrono::milliseconds max) {
  // Counted, not flagged: the progress thread and a caller may sleep at
  // once, and the first to wake must not hide the other from wake().
  sleepers_.fetch_add(1, std::memory_order_seq_cst);  // see wake()
  const bool armed = !has_posted_.load(std::memory_order_seq_cst) && transport_->arm();
  const int efd = transport_->event_fd();
  stop_driving();  // another thread may drive while we sleep; any event it leaves wakes us
  if (armed) {
    pollfd fds[2] = {{efd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    ::poll(fds, 2, static_cast<int>(std::max<long>(1, max.count())));
    std::uint64_t drained;
    while (::read(wake_fd_, &drained, sizeof drained) > 0) {
    }
  }
  sleepers_.fetch_sub(1, std::memory_order_release);
}

bool member::drive_or_sleep(std::chrono::microseconds max) {
  if (!try_drive()) return false;
  drives_.fetch_add(1, std::memory_order_relaxed);
  if (turn() != 0) {
    stop_driving();
    return true;
  }
  // A caller sleeping here keeps the progress thread out (loop()): the
  // heartbeats are its to send, so it wakes for the next one.
  tick();
  const auto until_tick = std::chrono::duration_cast<std::chrono::microseconds>(next_tick_ - clock::now());
  sleeping_callers_.fetch_add(1, std::memory_order_relaxed);
  sleep_for_events(std::chrono::duration_cast<std::chrono::milliseconds>(std::min(max, until_tick)));
  sleeping_callers_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void member::loop() {
  auto spin = config_.spin;
  loop_spin_us_.store(spin.count(), std::memory_order_relaxed);
  auto idle_since = clock::now();
  auto last_driven = idle_since;
  std::uint64_t drives_seen = 0;
  unsigned idle_turns = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    if (const auto d = drives_.load(std::memory_order_relaxed);
        d != drives_seen || sleeping_callers_.load(std::memory_order_relaxed) != 0) {
      // Callers are driving as they wait for answers, or sleep until the
      // transport wakes them: competing with them would only turn their
      // direct sends into hand-offs. Check back in a while (each check wakes
      // this thread: every 200 µs, that cost a depth-1 chase on 2 busy
      // cores about 15%); work posted meanwhile leaves with a caller's next
      // turn, or here within kCallersDriveCheck.
      drives_seen = d;
      std::this_thread::sleep_for(kCallersDriveCheck);
      continue;
    }
    if (!try_drive()) {
      // A sender holds the transport for a moment: stay out of its way.
      if (clock::now() - last_driven < config_.spin) sched_yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    if (turn() > 0) {
      stop_driving();
      idle_turns = 0;
      continue;
    }
    // Idle. With a core for each process (poll_budget() > 0): poll without
    // pause for a few turns (an answer is often close), then look at the
    // clock, tick, and yield the CPU now and then. With more processes than
    // cores, or while the machine is crowded by others (machine_load): yield
    // after every idle turn, as the frame this turn did not find may belong
    // to a process waiting for this core; the clock is read every turn then,
    // as a yield may last a time slice. While this process's own busy
    // threads hold every core it may use (yield_cores_while), no spin: a
    // yield would give the core to them until the next scheduler tick.
    const auto poll_for = poll_without_yield(config_.poll_without_yield);
    const unsigned turns_per_clock_read = poll_for.count() == 0 ? 1 : kTurnsPerClockRead;
    if (++idle_turns % turns_per_clock_read != 0) {
      stop_driving();
      continue;
    }
    const auto now = clock::now();
    last_driven = now;
    if (idle_turns == turns_per_clock_read) idle_since = now;
    tick();
    if (now - idle_since < spin && !(cores_taken_ && cores_taken_())) {
      stop_driving();
      if (now - idle_since >= poll_for) {
        idle_yields_.fetch_add(1, std::memory_order_relaxed);
        sched_yield();
      }
      continue;
    }
    // Block until the transport or a post() wakes us, or the next tick
    // (read while driving: a caller that drives meanwhile moves next_tick_).
    const auto wake_by = next_tick_;
    sleep_for_events(std::chrono::duration_cast<std::chrono::milliseconds>(wake_by - now));
    const auto woke = clock::now();
    // Work soon after the sleep began: the spin was too short for this
    // traffic. A long sleep, one the tick ended, or one a heartbeat ended
    // (peers started with this member send theirs just after its own): it
    // can be shorter. What woke it is handled here, to tell; if a caller
    // drives meanwhile, an early wake-up counts as work.
    const bool soon = woke - now < kLongestSpin && woke < wake_by;
    bool work = soon;
    if (try_drive()) {
      const std::uint64_t handled = work_handled_;
      turn();
      work = work_handled_ != handled;
      tick();  // heartbeats are due when the poll timed out
      stop_driving();
    }
    spin = soon && work ? std::min(2 * spin, kLongestSpin) : std::max(spin / 2, config_.spin);
    loop_spin_us_.store(spin.count(), std::memory_order_relaxed);
    idle_turns = 0;
  }
}

}  // namespace ferry::session
