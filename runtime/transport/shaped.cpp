// The emulated link of a device node (options::link_profile): a delay line
// around any backend. Frames in both directions wait in a queue until the
// link has carried them (size / rate, after the frames before them) and the
// one-way latency has passed; progress() releases them in order. The kernel
// here has no netem, so this is where a node's link latency comes from.
//
// Waiting: event_fd() is an epoll set of the backend's descriptor and a
// timerfd armed for the earliest held frame, so a blocked driver wakes when
// a frame is due as well as when the backend has work.
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "transport.hpp"

namespace ferry::transport {
namespace {

using clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, like the timerfd

class shaped_transport final : public transport {
 public:
  shaped_transport(std::unique_ptr<transport> inner, const options::link_profile& link, int epoll_fd, int timer_fd)
      : inner_(std::move(inner)), link_(link), epoll_(epoll_fd), timer_(timer_fd) {
    inner_->on_frame([this](std::span<const std::uint8_t> f) { arrive(f); });
  }
  ~shaped_transport() override {
    ::close(timer_);
    ::close(epoll_);
  }

  std::string name() const override {
    return fmt::format("{} (link: {} us one way, {})", inner_->name(), link_.latency.count(),
                       link_.bytes_per_second ? fmt::format("{} B/s", link_.bytes_per_second) : "no rate limit");
  }
  std::vector<std::uint8_t> address() const override { return inner_->address(); }
  result<peer_index> connect(std::span<const std::uint8_t> address) override { return inner_->connect(address); }
  void on_frame(frame_handler handler) override { handler_ = std::move(handler); }

  result<void> send(peer_index to, std::span<const std::uint8_t> frame) override {
    out_.push_back({carried(out_free_, frame.size()), to, {frame.begin(), frame.end()}});
    release();  // a zero-delay frame leaves now, after those before it
    return {};
  }

  unsigned progress() override {
    std::uint64_t expirations;
    while (::read(timer_, &expirations, sizeof expirations) > 0) {
    }
    return inner_->progress() + release();
  }
  int event_fd() const override { return epoll_; }
  bool arm() override {
    const auto due = next_due();
    if (due != clock::time_point::max()) {
      if (due <= clock::now()) return false;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count();
      itimerspec t{};
      t.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
      t.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
      ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &t, nullptr);
    }
    return inner_->arm();
  }

  std::uint64_t dropped_frames() const override { return inner_->dropped_frames(); }
  std::string deaf() override { return inner_->deaf(); }
  result<std::unique_ptr<registered_memory>> register_memory(std::span<std::byte> memory) override {
    return inner_->register_memory(memory);
  }
  // A one-sided read crosses the link twice (request, data): wait that out
  // first, making progress meanwhile, then read.
  result<void> get(peer_index from, const remote_region& region, std::uint64_t offset, std::span<std::byte> into,
                   int timeout_ms) override {
    const auto until = clock::now() + 2 * link_.latency + transfer_time(into.size());
    while (clock::now() < until) progress();
    return inner_->get(from, region, offset, into, timeout_ms);
  }

 private:
  struct held {
    clock::time_point due;
    peer_index to;  // outgoing frames only
    std::vector<std::uint8_t> bytes;
  };

  [[nodiscard]] clock::duration transfer_time(std::size_t bytes) const {
    if (link_.bytes_per_second == 0) return clock::duration::zero();
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
        static_cast<double>(bytes) / static_cast<double>(link_.bytes_per_second)));
  }
  // When a frame of `bytes` entering the link now has crossed it: after the
  // link has carried the frames before it (`free` tracks that), then latency.
  clock::time_point carried(clock::time_point& free, std::size_t bytes) const {
    free = std::max(free, clock::now()) + transfer_time(bytes);
    return free + link_.latency;
  }

  void arrive(std::span<const std::uint8_t> frame) {
    in_.push_back({carried(in_free_, frame.size()), 0, {frame.begin(), frame.end()}});
  }

  // Pass on every frame that is due, in order; how many.
  unsigned release() {
    unsigned n = 0;
    const auto now = clock::now();
    while (!out_.empty() && out_.front().due <= now) {
      held h = std::move(out_.front());
      out_.pop_front();
      // A failed send is a dead or unreachable peer: heartbeats report it.
      (void)inner_->send(h.to, h.bytes);
      ++n;
    }
    while (!in_.empty() && in_.front().due <= now) {
      held h = std::move(in_.front());
      in_.pop_front();  // before the handler: it may send, or make progress
      if (handler_) handler_(h.bytes);
      ++n;
    }
    return n;
  }
  [[nodiscard]] clock::time_point next_due() const {
    auto due = clock::time_point::max();
    if (!out_.empty()) due = out_.front().due;
    if (!in_.empty()) due = std::min(due, in_.front().due);
    return due;
  }

  std::unique_ptr<transport> inner_;
  options::link_profile link_;
  int epoll_;
  int timer_;
  frame_handler handler_;
  std::deque<held> out_, in_;
  clock::time_point out_free_{}, in_free_{};
};

}  // namespace

result<std::unique_ptr<transport>> make_shaped_transport(std::unique_ptr<transport> inner, const options::link_profile& link) {
  const int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event in{};
  in.events = EPOLLIN;
  if (timer < 0 || ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, timer, &in) != 0 ||
      ::epoll_ctl(ep, EPOLL_CTL_ADD, inner->event_fd(), &in) != 0) {
    const int e = errno;
    if (timer >= 0) ::close(timer);
    if (ep >= 0) ::close(ep);
    return make_error(errc::io_error, fmt::format("shaped link: timerfd/epoll: {}", std::strerror(e)));
  }
  return std::unique_ptr<transport>(std::make_unique<shaped_transport>(std::move(inner), link, ep, timer));
}

}  // namespace ferry::transport
