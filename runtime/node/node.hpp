// ⑦⑧⑨ A data node: owns an object store, serves object operations and
// invocations, JIT-compiles the code it is asked to run (pulling it from the
// caller on a miss), executes it against local objects on executor threads,
// and replies to the original caller or forwards the call onward.
//
// Threads: the member's driving thread (its progress thread, mostly) handles
// every frame and never runs LLVM or store I/O; the JIT's threads compile;
// `executors` threads run object operations and mobile code — except warm,
// short, non-blocking calls, which run where their frame is handled
// (node_config::inline_budget). `ferry node` runs one of these per process; unit tests run
// several in one process over the in-process transport.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csetjmp>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/ferry.h>
#include <ferry/jit.hpp>
#include <ferry/store.hpp>

#include "cluster/bootstrap.hpp"
#include "cluster/member.hpp"
#include "directory/directory.hpp"
#include "wire/frames.hpp"

namespace ferry::node {

using wire::node_index;

struct node_config {
  node_index index = 0;
  std::uint32_t nodes = 1;  ///< data nodes in the cluster
  std::uint8_t kind = FERRY_NODE_HOST;
  cluster::member_config member;  ///< transport and timing
  /// Persistent store directory; empty: an in-memory store.
  std::filesystem::path store_dir;
  jit_config jit;
  /// Threads that run mobile code.
  unsigned executors = 2;
  /// Calls of code whose last run was shorter than this (and that cannot
  /// block) run on the thread that handles the frame, saving two thread
  /// hand-offs per call; zero runs every call on an executor. A long call
  /// run inline delays this node's other frames by its length.
  std::chrono::microseconds inline_budget{50};
  /// A call forwarded more often than this fails with errc::out_of_bounds
  /// (a forwarding loop in user code). The wire field is 16 bits.
  std::uint16_t max_hops = 65000;
};

/// A code object this node knows, and its compiled form once loaded.
struct code_entry {
  code_object code;
  object_id id;
  /// Empty until loaded. Its symbol_at() turns the address cx.forward(&f)
  /// passes into f's symbol, in whichever tier is running.
  jit_function fn;
  /// The code may wait inside a call (it names ferry_invoke, whose nested
  /// call blocks until answered): it never runs on the network thread.
  bool may_block = true;
  /// Run the next call right where the frame is handled, without handing it
  /// to an executor: the code cannot block and its last run took less than
  /// node_config::inline_budget. Every run re-decides.
  std::atomic<bool> run_inline{false};
};

/// Counters of one node (for tests and diagnostics).
struct node_stats {
  std::uint64_t calls_inline = 0;       ///< mobile calls run where their frame was handled
  std::uint64_t calls_on_executor = 0;  ///< mobile calls handed to an executor thread
};

/// State of one mobile call while it runs (what ferry_context* points to).
struct call_context {
  class node* self = nullptr;
  const code_entry* code = nullptr;
  const wire::invoke_body* call = nullptr;
  std::jmp_buf abort;  ///< runtime API failures leave the mobile code here
  status failure;
  bool forwarded = false;
  wire::invoke_body forward;  ///< the continuation, when forwarded
};

class node {
 public:
  static result<std::unique_ptr<node>> create(node_config config);
  ~node();

  /// Publish this node's address through `bs`, connect to every data node and
  /// say hello to each, and to every client the bootstrap knows (a restarted
  /// node: its clients reconnect). Waits up to `timeout` for the other nodes.
  result<void> join(cluster::bootstrap& bs, std::chrono::milliseconds timeout);
  /// Block until a shutdown frame arrives or stop() is called.
  void wait();
  void stop();

  [[nodiscard]] node_index index() const { return config_.index; }
  [[nodiscard]] std::uint8_t kind() const { return config_.kind; }
  [[nodiscard]] const std::string& triple() const { return triple_; }
  store& objects() { return *store_; }
  [[nodiscard]] node_stats stats() const {
    return {calls_inline_.load(std::memory_order_relaxed), calls_on_executor_.load(std::memory_order_relaxed)};
  }
  jit& engine() { return *jit_; }

  // --- runtime API backends (called from mobile code via ferry.h) ---------
  /// Abort the running call with `s` (does not return).
  [[noreturn]] void fail_call(call_context& cx, status s);
  void* local(call_context& cx, const ferry_ref& r, std::uint64_t size);
  void forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size);
  void invoke_nested(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
                     std::uint64_t size, void* result, std::uint64_t result_size);

 private:
  explicit node(node_config config) : config_(std::move(config)) {}

  // The driving thread (cluster/member.hpp).
  void on_frame(wire::frame&& f);
  void on_peer_dead(node_index who);
  void handle_invoke(wire::frame&& f);
  void handle_object_op(const wire::frame& f);
  void handle_code_request(const wire::frame& f);
  void handle_code_response(wire::frame&& f);
  void route(wire::frame&& f, const object_id& target);
  /// Where to send a request for `id` that is not here; nullopt: nobody has it.
  std::optional<node_index> next_hop(const object_id& id) const;
  void ensure_code(wire::frame&& f);
  void start_load(const object_id& id, code_object code);
  void reply_error(node_index to, std::uint64_t call, status s);
  /// This node's hello body (who it is, how to reach it).
  [[nodiscard]] wire::hello_body own_hello() const;
  /// Tell `id`'s home node who owns it now (kNoNode: removed).
  void tell_home(const object_id& id, node_index owner);
  /// A request from `requester` for `id` is passed on to `next`: if `next`
  /// is the owner we know, tell the requester so it goes there directly.
  void hint_owner(node_index requester, const object_id& id, node_index next);
  void fail_code_request(std::uint64_t request, status s);

  // Executor threads.
  void execute(code_entry* entry, wire::frame f);
  void executor_loop();
  void submit(std::function<void()> task);

  code_entry* code_by_symbol(std::string_view symbol);

  node_config config_;
  std::string triple_;
  std::unique_ptr<store> store_;
  std::unique_ptr<jit> jit_;
  std::unique_ptr<cluster::member> member_;
  directory::owner_cache owners_;

  // Code known here; entries are never erased while the node runs (their
  // addresses are held by running calls).
  std::mutex code_mu_;
  std::unordered_map<object_id, std::unique_ptr<code_entry>> code_;
  // Driving thread only: invocations waiting for code, by code id / symbol.
  std::unordered_map<object_id, std::vector<wire::frame>> waiting_for_code_;
  std::unordered_map<std::string, std::vector<wire::frame>> waiting_for_symbol_;
  struct code_request {
    object_id code;  ///< nil: requested by symbol
    std::string symbol;
    node_index holder;
  };
  std::unordered_map<std::uint64_t, code_request> code_requests_;
  std::uint64_t next_request_ = 1;

  // Nested calls from executor threads waiting for their reply.
  struct nested_wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::vector<std::uint8_t> result;
    status error;
    object_id target;                    ///< the object the call runs on
    node_index sent_to = wire::kNoNode;  ///< first hop (guarded by nested_mu_)
    /// Complete with an error (the first hop or the target's owner died).
    void finish(status s);
  };
  std::mutex nested_mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<nested_wait>> nested_;
  std::atomic<std::uint64_t> next_nested_{1ull << 62};

  // Executor pool.
  std::mutex exec_mu_;
  std::condition_variable exec_cv_;
  std::deque<std::function<void()>> tasks_;
  bool exec_stop_ = false;
  std::vector<std::thread> executors_;

  std::atomic<std::uint64_t> calls_inline_{0}, calls_on_executor_{0};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
};

}  // namespace ferry::node
