// ifunc/service.hpp — ifunc messages between ferry members (<ferry/ifunc.h>):
// each node and each client runtime has one service, which the member's
// frame handler gives every `ifunc` frame (wire/frames.hpp ifunc_body).
//
//   client: ferry_ifunc_send -> member.send(node, ifunc frame)
//   node:   on_frame -> the node's dispatch policy (in place when the ifunc
//           is registered here and its last NAME_main was short, else an
//           executor): take the message (registering shipped code in the
//           origin context's scope), run NAME_main contained and metered
//           (exec::run_mobile) on the target object's bytes; a failure goes
//           back to the origin as an ifunc frame
//   client: on_frame -> the context's inbox -> ferry_ifunc_poll runs it
//
// The contexts of a member: on a client, those its program created; on a
// node, one per origin context it got messages for, made on first use.
// Each context is the registry scope of its ifuncs (ifunc/registry.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <ferry/ferry.h>
#include <ferry/ref.hpp>
#include <ferry/status.hpp>
#include <ferry/store.hpp>

#include "core/task_dispatcher.hpp"
#include "ifunc/registry.hpp"
#include "session/driving.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::exec {
class dispatch_policy;
}

namespace ferry::ifunc {

class service;

/// A context (what ferry_ifunc_context* points to).
struct context {
  service* owner = nullptr;
  wire::node_index origin = wire::kNoNode;  ///< the member whose program created it
  std::uint64_t id = 0;                     ///< unique within its origin
  std::string name;
  std::atomic<bool> sent{false};  ///< origin: a message of it went to a member

  /// Messages for it that arrived at its origin, and failures nodes reported.
  struct arrival {
    std::vector<std::uint8_t> message;  ///< empty for a failure
    status failure;
  };
  std::mutex mu;
  std::deque<arrival> inbox;
  /// inbox.size(), written under mu: a poll that finds it 0 takes no lock.
  std::atomic<std::size_t> waiting{0};
  /// Notified (under mu) when an arrival is queued: ferry_ifunc_wait
  /// sleeps on it while another thread drives.
  std::condition_variable arrived;
};

/// What a node gives its service (a client gives nothing).
struct node_side {
  /// Where NAME_main runs: in place or on an executor.
  exec::dispatch_policy* policy = nullptr;
  ferry::store* objects = nullptr;
  std::uint64_t fuel_per_call = 0;  ///< 0: unlimited
  /// Not empty (--trust-keys): only ifuncs signed by one of these keys are
  /// registered (`ferry sign --ifunc`, docs/security.md).
  std::vector<signing_public_key> trusted_signers;
  /// Not ok: every message is refused with this (an untrusted node without
  /// trusted keys: it runs only sandbox-checked code, and ifunc bitcode is
  /// not parsed in the sandbox).
  status refuse;
  /// Create the engine for ifunc messages as the node starts, so that its
  /// warm-up (an optimized compile) runs then and not inside the first
  /// message. Off on a DPU node: its few slow cores (an emulated aarch64
  /// here, where the warm-up takes seconds) serve calls meanwhile.
  bool engine_at_start = true;
};

class service {
 public:
  /// `nodes`: data nodes in the cluster. `node`: set on a node. `link`:
  /// an origin program's progress driver, through which wait() drives.
  service(session::member& member, std::uint32_t nodes, std::optional<node_side> node,
          std::shared_ptr<detail::driver_link> link = nullptr);
  ~service();

  /// An ifunc frame arrived (the driving thread).
  void on_frame(wire::frame&& f);

  /// A new context of this member's program.
  std::unique_ptr<context> open(std::string name);
  /// Forget a context: its ifuncs are deregistered, its inbox dropped, and
  /// the nodes are told to drop its code (if it sent anything).
  void close(context& cx);
  /// Node: the origin contexts whose code and state it holds.
  [[nodiscard]] std::size_t contexts() const;

  /// Send `image` (an ifunc message) for `cx` to member `to`.
  status send(context& cx, wire::node_index to, std::span<const std::uint8_t> image, const ferry_ref& target,
              std::uint8_t flags);
  /// The next arrival for `cx` (driving progress once when there is none).
  std::optional<context::arrival> next(context& cx);
  /// The next arrival for `cx`, waiting for one until `deadline`: polling,
  /// then sleeping on the transport as a call's future does
  /// (detail::drive_until). Without a driver (a node): next().
  std::optional<context::arrival> wait(context& cx, std::chrono::steady_clock::time_point deadline);

  [[nodiscard]] wire::node_index self() const { return member_.self(); }
  [[nodiscard]] std::uint32_t nodes() const { return nodes_; }
  [[nodiscard]] bool on_node() const { return node_.has_value(); }
  /// Node: the engine its ifunc messages compile with has started and
  /// warmed up (node_stats::ifunc_warmed_up). Once true, true for good;
  /// never waits for a registration that is compiling.
  [[nodiscard]] bool engine_warmed_up() const {
    if (engine_warm_.load(std::memory_order_relaxed)) return true;
    const bool warm = node_ && node_->refuse.ok() && registry::instance().warmed_up(member_linking());
    if (warm) engine_warm_.store(true, std::memory_order_relaxed);
    return warm;
  }

  /// How ferry's front end links ifuncs (ferry_ifunc.cpp): every one pure
  /// and metered, the <ferry/ifunc.h> API callable.
  static const linking& ferry_linking();
  /// The same, loading only code signed by one of `trusted` (empty: the
  /// above). One per key set, for the life of the process.
  static const linking& ferry_linking(const std::vector<signing_public_key>& trusted);
  /// How this member links the ifuncs it registers or receives: on a node
  /// with trusted keys, only signed ones.
  [[nodiscard]] const linking& member_linking() const;

 private:
  /// `fn`: the resident ifunc on_frame found for it (nullptr: none, or a
  /// message that installs code).
  void run_on_node(std::shared_ptr<context> cx, wire::ifunc_body b, std::shared_ptr<entry> fn);
  /// The ifunc `message` runs, when `cx` has it registered (nullptr: it
  /// does not, or the message is malformed).
  static std::shared_ptr<entry> resident(const context& cx, std::span<const std::uint8_t> message);
  void report(const context& cx, const status& failure);
  std::shared_ptr<context> node_context(wire::node_index origin, std::uint64_t id);

  session::member& member_;
  std::uint32_t nodes_;
  std::optional<node_side> node_;
  std::shared_ptr<detail::driver_link> link_;
  mutable std::atomic<bool> engine_warm_{false};  // engine_warmed_up() said so once
  bool prepared_engine_ = false;                   // registry::prepare held the engine at start: release it
  /// The arrival at the head of `cx`'s inbox, taken (none: empty).
  static std::optional<context::arrival> take(context& cx);
  void drop(wire::node_index origin, std::uint64_t id);

  mutable std::mutex mu_;
  std::map<std::uint64_t, context*> mine_;  // client: contexts of this program, by id
  std::map<std::pair<wire::node_index, std::uint64_t>, std::shared_ptr<context>> visiting_;  // node: by origin
  std::uint64_t next_id_ = 1;
};

/// The service of this process's client runtime (set while one exists).
service* process_service();
void set_process_service(service* s);

/// The context and ifunc of the NAME_main running on this thread (nullptrs
/// outside one).
std::pair<context*, const entry*> running_here();

/// Run a taken message's NAME_main on this thread as ferry runs mobile code
/// (exec::run_mobile: faults end it with a typed error; `fuel` limits it,
/// 0: unlimited), with ferry_ifunc_here() answering for `cx`. Run in place
/// on the thread that drives `member`, it keeps that member's heartbeats
/// going (exec::keep_beating).
status run_contained(context& cx, const entry& fn, void* payload, std::size_t payload_size, void* target_args,
                     std::uint64_t fuel, session::member* member = nullptr);

}  // namespace ferry::ifunc
