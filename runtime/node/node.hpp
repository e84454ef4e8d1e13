// A data node: the composition of the stages a node runs, and the handler
// that sends each frame to its stage.
//
//   frame arrives (session/member)       hello        membership, restarts
//     invoke  -> route (directory/router) or ensure code (code/loader)
//             -> dispatch (exec/dispatch) -> run (exec/runner) -> reply/forward
//     object_* -> object service (object/service), on an object thread
//     code_request -> code server (code/server)
//     reply/error/code_response -> the call table (calls/call_table)
//     ifunc   -> the ifunc service (ifunc/service): NAME_main on an executor
//
// Threads (docs/architecture.md): the member's driving thread handles every
// frame and never runs LLVM or store I/O; the JIT's threads compile; the
// executors run mobile code — except warm, short, non-blocking calls, which
// run where their frame is handled; object operations have threads of their
// own. `ferry node`
// runs one of these per process; unit tests run several in one process
// over the in-process transport.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ferry/ferry.h>
#include "jit/jit.hpp"
#include <ferry/store.hpp>

#include "bootstrap/bootstrap.hpp"
#include "calls/call_table.hpp"
#include "code/loader.hpp"
#include "directory/discovery.hpp"
#include "directory/router.hpp"
#include "exec/dispatch.hpp"
#include "exec/runner.hpp"
#include "ifunc/service.hpp"
#include "object/migration.hpp"
#include "object/service.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::node {

using wire::node_index;

struct node_config {
  node_index index = 0;
  std::uint32_t nodes = 1;  ///< data nodes in the cluster
  /// How the cluster finds owners (directory/router.hpp); every member of a
  /// cluster must use the same scheme.
  directory::scheme directory = directory::scheme::home;
  std::uint8_t kind = FERRY_NODE_HOST;
  session::member_config member;  ///< transport and timing
  /// Persistent store directory; empty: an in-memory store.
  std::filesystem::path store_dir;
  /// Most bytes of object images the store holds (store::set_memory_limit);
  /// more fails with errc::out_of_memory. 0: the machine's physical memory
  /// for an in-memory store, no limit for a directory store (its disk is).
  std::uint64_t memory_limit = 0;
  jit_config jit;
  /// Threads that run mobile code (executors).
  unsigned executors = 2;
  /// Threads that run object operations (create, put, get, remove): a pool
  /// of their own, so mobile calls that never end cannot starve them.
  unsigned object_threads = 2;
  /// Calls of code whose last run was shorter than this (and that cannot
  /// block) run on the thread that handles the frame (exec/dispatch.hpp);
  /// zero runs every call on an executor. A call run in place delays this
  /// node's other frames by its length; one handed to an executor pays two
  /// thread wake-ups (the executor's, and the network thread's for the next
  /// frame once it has gone to sleep meanwhile): 60–80 µs on this 2-core VM,
  /// which made a 1 ms budget the default (docs/architecture.md).
  std::chrono::microseconds inline_budget{1000};
  /// A call forwarded more often than this fails with errc::out_of_bounds
  /// (a forwarding loop in user code). The wire field is 16 bits.
  std::uint16_t max_hops = 65000;
  /// Work one mobile call may do, in ferry_fuel units (1 per call of a
  /// function that calls others, 1 per loop iteration, charged in blocks):
  /// past it the call ends with errc::fuel_exhausted and its executor is
  /// free again. 0: unlimited (the call's deadline still stops it). No
  /// effect when `jit.meter` is off (then neither fuel nor deadline can
  /// stop running code).
  std::uint64_t fuel_per_call = std::uint64_t{100'000'000'000};
  /// Test-only fault injection: the name of a step of the move protocol
  /// (object::migration::kStep...) at which the node _exits, as if killed
  /// there. `ferry node` reads it once, at start, from FERRY_TEST_CRASH_AT.
  std::string crash_at;
};

/// Counters of one node (for tests and diagnostics; `ferry node
/// --stats-file` writes them out). The last four count bad input from peers
/// that was dropped rather than answered (docs/security.md).
struct node_stats {
  std::uint64_t calls_inline = 0;       ///< mobile calls run where their frame was handled
  std::uint64_t calls_on_executor = 0;  ///< mobile calls handed to an executor thread
  std::uint64_t late_answers = 0;       ///< answers that matched no outstanding request (stray, replayed, forged)
  std::uint64_t owner_entries = 0;      ///< objects whose owner this node's router knows
  std::uint64_t moved_out = 0;          ///< objects this node moved to another node
  std::uint64_t bad_frames = 0;         ///< frames that did not decode (answered when their header names a member)
  std::uint64_t dropped_frames = 0;     ///< frames the transport dropped unread (oversized, malformed)
  std::uint64_t refused_frames = 0;     ///< well-formed frames this node does not take from their sender
  std::uint64_t ifunc_contexts = 0;     ///< <ferry/ifunc.h> contexts of origins whose code and state it holds
  std::uint64_t code_loads = 0;         ///< code objects its JIT was asked to make resident (compiled or from a cache; jit_stats::loads)
  std::uint64_t tier_ups = 0;           ///< code recompiled optimized, being hot by calls or run time (jit_stats::tier_ups)
  std::uint64_t recompiling = 0;        ///< optimized recompiles requested and not finished (jit_stats::recompiling)
  /// Loads and recompiles its JIT could not finish (jit_stats::failures): a
  /// failed load is answered to its caller; a failed recompile only counted
  /// here (the fast tier keeps serving).
  std::uint64_t jit_failures = 0;
  /// Puts written into an object in memory from the transport's buffer on
  /// the network thread (object_service::put_in_place); the others went to
  /// an object thread.
  std::uint64_t puts_in_place = 0;
  /// Parts of moved objects' images (object_image frames) copied from the
  /// transport's buffer on the network thread into the image they belong
  /// to; a whole image is then stored as pending there by a node whose
  /// pending images are in memory (migration::images_in_place), by an
  /// object thread on a persistent node.
  std::uint64_t image_parts = 0;
  /// Images being assembled from their parts now (migration::images_assembling).
  std::uint64_t images_assembling = 0;
  /// Objects moving away from this node or to it now: their requests wait
  /// here until the move ends (migration::hold).
  std::uint64_t objects_moving = 0;
  /// Lookups of an object's owner this node started, each a dir_lookup to
  /// every other node (directory::discovery; router::must_discover says when).
  std::uint64_t owner_lookups = 0;
  /// 1 once the engine that compiles this node's <ferry/ifunc.h> messages
  /// has started and finished its warm-up (ifunc::registry::prepare, as the
  /// node starts; on a DPU node, at its first ifunc message), 0 before or
  /// on a node that takes no ifunc messages.
  std::uint64_t ifunc_warmed_up = 0;
};

class node {
 public:
  static result<std::unique_ptr<node>> create(node_config config);
  ~node();

  /// A data node join() could not connect to, and why.
  struct unreachable_node {
    node_index index;
    status why;
  };
  /// Publish this node's address through `bs`, connect to every data node and
  /// say hello to each, and to every client the bootstrap knows (a restarted
  /// node: its clients reconnect). Waits up to `timeout` for the other nodes.
  /// A node whose published address cannot be connected to is down (over
  /// UCX shm: its process has gone, and with it the queue the address
  /// names): this one starts without it, returns it, and learns it from its
  /// hello when it is back, as it learns a restarted node.
  result<std::vector<unreachable_node>> join(cluster::bootstrap& bs, std::chrono::milliseconds timeout);
  /// Block until a shutdown frame arrives or stop() is called.
  void wait();
  void stop();

  [[nodiscard]] node_index index() const { return config_.index; }
  [[nodiscard]] std::uint8_t kind() const { return config_.kind; }
  [[nodiscard]] const std::string& triple() const { return triple_; }
  [[nodiscard]] const std::string& cpu() const { return cpu_; }
  /// The transport it serves over: "ucx/shm", "ofi/tcp;ofi_rxm", ...
  [[nodiscard]] std::string transport_name() const { return member_->transport_name(); }
  store& objects() { return *store_; }
  [[nodiscard]] node_stats stats() const {
    const jit_stats compiled = jit_->stats();
    return {policy_->calls_in_place(), policy_->calls_on_executor(), calls_.late_answers(), router_->size(),
            migration_->moved_out(),    member_->bad_frames(),         member_->dropped_frames(),
            refused_.load(std::memory_order_relaxed), ifuncs_->contexts(), compiled.loads, compiled.tier_ups,
            compiled.recompiling, compiled.failures, puts_in_place_.load(std::memory_order_relaxed),
            image_parts_.load(std::memory_order_relaxed), migration_->images_assembling(), migration_->moving(),
            discovery_->lookups(),      ifuncs_->engine_warmed_up() ? 1u : 0u};
  }
  jit& engine() { return *jit_; }

 private:
  explicit node(node_config config) : config_(std::move(config)) {}

  // The driving thread (session/member.hpp).
  void on_frame(wire::frame&& f);
  /// A frame that ends with its data, the data still in the transport's
  /// buffer (session::member::on_data_frame).
  void on_data_frame(const wire::frame& f, std::span<const std::uint8_t> data);
  void on_hello(wire::frame&& f);
  void on_peer_dead(node_index who);
  /// A well-formed frame this node does not take from its sender: count it,
  /// and tell the sender why when it expects an answer (`answer`).
  void refuse(const wire::frame& f, std::string_view why, bool answer);
  /// An invoke frame, from the network or from this node (a forward's
  /// continuation, a nested call): check it, then route it or run it here.
  /// What this node's heartbeats report (placement's inputs).
  [[nodiscard]] wire::load_body load() const;
  void handle_invoke(wire::frame&& f);
  /// Send invoke frame `f` on towards `target`'s owner (discovered first,
  /// under the e2e scheme, when unknown).
  void route(wire::frame&& f, const object_id& target);
  /// A dir_lookup: say whether this node owns the object.
  void answer_lookup(const wire::frame& f);
  /// Run invoke frame `f` with resident `code` — unless its object is moving
  /// (held until the move ends) or moved away meanwhile (routed on).
  void dispatch(code::code_entry* code, wire::frame&& f);
  /// This node's hello body (who it is, how to reach it).
  [[nodiscard]] wire::hello_body own_hello() const;
  /// Every object this node's store keeps, with its move count (the
  /// directory's version of it): the readable ones and those found damaged,
  /// at 0 (they are still here, and answer corrupt: their homes must route
  /// to this node, not say that no node holds them).
  [[nodiscard]] std::vector<std::pair<object_id, std::uint64_t>> kept_objects() const;

  // Setup order; teardown (~node) stops threads first, then the reverse.
  node_config config_;
  std::string triple_;
  std::string cpu_;
  std::unique_ptr<store> store_;
  std::unique_ptr<jit> jit_;
  std::unique_ptr<session::member> member_;
  std::unique_ptr<directory::router> router_;
  std::unique_ptr<directory::discovery> discovery_;
  calls::call_table calls_;
  std::unique_ptr<exec::dispatch_policy> policy_;
  std::unique_ptr<code::loader> loader_;
  std::unique_ptr<object::object_service> objects_;
  std::unique_ptr<object::move_log> moves_;
  std::unique_ptr<object::migration> migration_;
  std::unique_ptr<exec::runner> runner_;
  std::unique_ptr<ifunc::service> ifuncs_;

  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> puts_in_place_{0};
  std::atomic<std::uint64_t> image_parts_{0};
  /// Clients whose join hello came while join() was still writing (hellos
  /// to nodes and clients, directory registrations): answered at its end
  /// (docs/protocol.md, "Membership"), so once a client has joined, no
  /// node's start-up write is still under way (docs/transports.md, "A peer
  /// that dies").
  std::mutex join_mu_;
  bool joined_ = false;  // join() has made its writes (guarded by join_mu_)
  std::vector<std::pair<node_index, std::uint64_t>> unanswered_;  // (client, its hello's call), guarded by join_mu_
  /// Calls and object requests this node passed on to another node. The
  /// next node answers their origin directly, so if it dies or is replaced
  /// by a restart first, only this node knows the requests went there: an
  /// origin that learned of a restart before this node did sent them here
  /// after its own verdict on the old process, and nothing else would fail
  /// them before their deadline. On that member's death their origins hear
  /// peer_dead from here (a request that was answered already drops it as a
  /// late answer). Calls are kept until their deadline; object requests
  /// carry none and are kept until overwritten. A ring of the last
  /// kMaxForwarded per member: a forward allocates nothing once it has
  /// grown. Calls are passed on by the driving thread, object requests by
  /// object threads: hence the lock.
  struct forwarded_call {
    node_index origin;
    std::uint64_t call;
    std::uint64_t deadline_us;  ///< 0: none
  };
  struct forwarded_ring {
    std::vector<forwarded_call> calls;
    std::size_t oldest = 0;  ///< overwritten next once full
  };
  std::mutex forwarded_mu_;
  std::vector<forwarded_ring> forwarded_;  ///< by the member they went to, guarded by forwarded_mu_
  static constexpr std::size_t kMaxForwarded = 4096;
  void remember_forwarded(node_index to, const forwarded_call& c);
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
};

}  // namespace ferry::node
