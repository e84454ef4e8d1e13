// In-process backend, for unit tests only: every endpoint lives in this
// process; frames are copied into the receiver's inbox and its eventfd is
// signalled. Endpoints may be driven from different threads (one each).
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "transport.hpp"

namespace ferry::transport {
namespace {

class inproc_transport;

// The endpoint id an in-process address holds (it is the id's bytes).
std::optional<std::uint64_t> id_of(std::span<const std::uint8_t> address) {
  if (address.size() != sizeof(std::uint64_t)) return std::nullopt;
  std::uint64_t id;
  std::memcpy(&id, address.data(), sizeof id);
  return id;
}

// All live in-process endpoints by id. Sends hold this lock while they touch
// the receiver, so a receiver cannot be destroyed under a sender.
struct fabric {
  std::mutex mu;
  std::unordered_map<std::uint64_t, inproc_transport*> endpoints;
  std::uint64_t next_id = 1;
  static fabric& get() {
    static fabric f;
    return f;
  }
};

class inproc_memory final : public registered_memory {
 public:
  explicit inproc_memory(std::span<std::byte> m) : m_(m) {}
  remote_region describe() const override { return {reinterpret_cast<std::uint64_t>(m_.data()), m_.size(), {}}; }

 private:
  std::span<std::byte> m_;
};

class inproc_transport final : public transport {
 public:
  inproc_transport() : efd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    auto& f = fabric::get();
    std::lock_guard lock(f.mu);
    id_ = f.next_id++;
    f.endpoints[id_] = this;
  }
  ~inproc_transport() override {
    auto& f = fabric::get();
    {
      std::lock_guard lock(f.mu);
      f.endpoints.erase(id_);
    }
    ::close(efd_);
  }

  std::string name() const override { return "inproc"; }

  std::vector<std::uint8_t> address() const override {
    std::vector<std::uint8_t> a(sizeof id_);
    std::memcpy(a.data(), &id_, sizeof id_);
    return a;
  }

  result<peer_index> connect(std::span<const std::uint8_t> address) override {
    const auto id = id_of(address);
    if (!id) return make_error(errc::bad_format, fmt::format("in-process address of {} bytes", address.size()));
    peers_.push_back(*id);
    return static_cast<peer_index>(peers_.size() - 1);
  }

  void on_frame(frame_handler handler) override { handler_ = std::move(handler); }

  result<void> send(peer_index to, std::span<const std::uint8_t> frame) override {
    if (to >= peers_.size()) return make_error(errc::not_found, fmt::format("no in-process peer {}", to));
    auto& f = fabric::get();
    std::lock_guard lock(f.mu);
    auto it = f.endpoints.find(peers_[to]);
    if (it == f.endpoints.end())
      return make_error(errc::peer_dead, fmt::format("in-process peer {} is gone", to));
    it->second->enqueue(std::vector<std::uint8_t>(frame.begin(), frame.end()));
    return {};
  }

  unsigned progress() override {
    std::deque<std::vector<std::uint8_t>> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(inbox_);
    }
    for (const auto& frame : batch)
      if (handler_) handler_(frame);
    return static_cast<unsigned>(batch.size());
  }

  int event_fd() const override { return efd_; }

  bool arm() override {
    std::uint64_t drained;
    while (::read(efd_, &drained, sizeof drained) > 0) {
    }
    std::lock_guard lock(mu_);
    return inbox_.empty();
  }

  result<std::unique_ptr<registered_memory>> register_memory(std::span<std::byte> memory) override {
    return std::unique_ptr<registered_memory>(std::make_unique<inproc_memory>(memory));
  }

  std::string deaf() override {
    if (!deaf_.load(std::memory_order_relaxed)) return {};
    return "this in-process endpoint was deafened by its test (transport::deafen_inproc)";
  }

  /// deafen_inproc(): frames sent to it from now on are dropped, its own
  /// sends still go out.
  void deafen() { deaf_.store(true, std::memory_order_relaxed); }

  result<void> get(peer_index from, const remote_region& region, std::uint64_t offset, std::span<std::byte> into,
                   int) override {
    if (from >= peers_.size()) return make_error(errc::not_found, fmt::format("no in-process peer {}", from));
    if (offset > region.length || region.length - offset < into.size())
      return make_error(errc::out_of_bounds, fmt::format("get of [{}, +{}) outside a {}-byte region", offset,
                                                         into.size(), region.length));
    std::memcpy(into.data(), reinterpret_cast<const std::byte*>(region.address) + offset, into.size());
    return {};
  }

 private:
  void enqueue(std::vector<std::uint8_t> frame) {
    if (deaf_.load(std::memory_order_relaxed)) return;
    {
      std::lock_guard lock(mu_);
      inbox_.push_back(std::move(frame));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
  }

  int efd_;
  std::uint64_t id_ = 0;
  std::vector<std::uint64_t> peers_;
  frame_handler handler_;
  std::mutex mu_;
  std::deque<std::vector<std::uint8_t>> inbox_;
  std::atomic<bool> deaf_{false};
};

}  // namespace

void deafen_inproc(std::span<const std::uint8_t> address) {
  const auto id = id_of(address);
  if (!id) return;
  auto& f = fabric::get();
  std::lock_guard lock(f.mu);
  if (auto it = f.endpoints.find(*id); it != f.endpoints.end()) it->second->deafen();
}

result<std::unique_ptr<transport>> make_inproc_transport() {
  return std::unique_ptr<transport>(std::make_unique<inproc_transport>());
}

}  // namespace ferry::transport
