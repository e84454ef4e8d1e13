// ⑧⑨ execute, then reply or forward: runs a mobile call whose code is
// resident against this node's objects, serves the runtime API the code
// calls (cx.local, cx.forward, cx.invoke), and sends the result to the
// call's origin — or hands the continuation back to the node to route
// (at once, in the call's own frame, when it ran on the driving thread).
//
// Threads: run() is called where the dispatch policy put the call (an
// executor, or in place on the driving thread); nested calls block their
// executor until answered and are refused on the driving thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include <ferry/store.hpp>

#include "calls/call_table.hpp"
#include "code/loader.hpp"
#include "directory/discovery.hpp"
#include "directory/router.hpp"
#include "exec/call_context.hpp"
#include "exec/dispatch.hpp"
#include "session/member.hpp"

namespace ferry::exec {

struct node_identity {
  wire::node_index index = 0;
  std::uint8_t kind = FERRY_NODE_HOST;
  std::string triple;
  std::string cpu;
};

class runner final : public call_host {
 public:
  /// `route`: the node's entry for an invoke frame that did not arrive from
  /// the network (a forward's continuation, a nested call); it runs on the
  /// driving thread.
  runner(node_identity who, store& objects, const directory::router& router, directory::discovery& discovery,
         session::member& member, calls::call_table& calls, dispatch_policy& policy,
         std::function<void(wire::frame&&)> route)
      : who_(std::move(who)),
        store_(objects),
        persistent_(objects.persistent()),
        router_(router),
        discovery_(discovery),
        member_(member),
        calls_(calls),
        policy_(policy),
        route_(std::move(route)) {}

  /// Fuel of each call (ferry_fuel units); 0: unlimited (the deadline still stops metered code).
  void set_fuel_per_call(std::uint64_t fuel) { fuel_per_call_ = fuel; }

  /// Calls run here on pulled data (placement sent them: wire::kInvokePull)
  /// and the bytes they pulled; heartbeats report them.
  [[nodiscard]] std::uint64_t pulled_calls() const { return pulled_calls_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t pulled_bytes() const { return pulled_bytes_.load(std::memory_order_relaxed); }

  /// Run invoke frame `f` with resident `code`, then reply or forward.
  void run(code::code_entry* code, wire::frame&& f);
  /// Answer a preload (wire::kInvokeLoadOnly) whose code is now resident:
  /// an empty reply, or an error if the caller's signature does not match;
  /// with wire::kInvokeOptimize, once the code runs optimized (or why not).
  void loaded(const code::code_entry& code, const wire::frame& f) const;
  /// Send an error frame for call `call` to `to`.
  void reply_error(wire::node_index to, std::uint64_t call, const status& s) const;

  // call_host
  bool local(call_context& cx, const ferry_ref& r, std::uint64_t size, access how, void** out) override;
  bool read(call_context& cx, const ferry_ref& r, void* out, std::uint64_t size) override;
  bool forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
               std::uint64_t size) override;
  bool invoke(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
              void* result, std::uint64_t result_size) override;
  bool resolve(call_context& cx, const ferry_ref& holder, std::uint64_t ptr_bits, ferry_ref* out) override;
  bool make_ptr(call_context& cx, const ferry_ref& holder, const ferry_ref& target, std::uint64_t* out) override;
  bool fetch(call_context& cx, const ferry_ref& r, std::uint64_t size, const void** out) override;
  bool migrate(call_context& cx, const ferry_ref& r, std::uint32_t node) override;
  [[nodiscard]] std::uint32_t node_id() const override { return who_.index; }
  [[nodiscard]] std::uint32_t node_kind() const override { return who_.kind; }
  [[nodiscard]] const char* node_triple() const override { return who_.triple.c_str(); }
  [[nodiscard]] const char* node_cpu() const override { return who_.cpu.c_str(); }

 private:
  /// The invoke body of a call `cx` makes to `fn` on `target` (forward or nested).
  bool continuation(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
                    const char* what, wire::invoke_body& out);

  /// Send request `f` (its call id is set here) to `to` and wait, on this
  /// executor, until it is answered or `cx`'s deadline passes; the answer's
  /// bytes, or false with cx.failure set. `what` names it in errors.
  bool await_answer(call_context& cx, calls::depends_on deps, wire::node_index to, wire::frame&& f,
                    const std::string& what, std::vector<std::uint8_t>& answer);
  /// A private copy of [r.offset, +size) of an object held elsewhere, kept in
  /// cx.fetched until the call ends (cx.fetch, and cx.local in a call that
  /// placement sent here on pulled data).
  bool pull(call_context& cx, const ferry_ref& r, std::uint64_t size, const char* what, std::uint8_t** out);
  /// False, with not_local in cx.failure, unless `id` is in this node's store.
  bool here(call_context& cx, const object_id& id, const char* what);

  /// Seal (store::flush) every object `cx` obtained a local pointer to; the
  /// first failure, if any. Objects removed meanwhile are skipped.
  status seal(const call_context& cx);
  /// A forwarded call's continuation (cx.forward) goes on in `f`, the
  /// call's own frame: routed at once on the driving thread, else posted.
  void hand_on(wire::frame&& f, call_context& cx);
  /// An error if the caller's view of `code` (its signature hash) is not the code's.
  static status signature_matches(const code::code_entry& code, const wire::invoke_body& call);
  /// This thread's spare invoke body: cx.forward starts as it, so a warm
  /// forward reuses the buffers of the call before it.
  static wire::invoke_body& spare_continuation();

  node_identity who_;
  store& store_;
  std::uint64_t fuel_per_call_ = 0;
  bool persistent_;  ///< seal touched objects when a call ends (a memory store keeps no checksum at rest)
  const directory::router& router_;
  directory::discovery& discovery_;  ///< cx.fetch of an object whose owner is unknown (e2e scheme)
  session::member& member_;
  calls::call_table& calls_;
  dispatch_policy& policy_;
  std::function<void(wire::frame&&)> route_;
  std::atomic<std::uint64_t> pulled_calls_{0}, pulled_bytes_{0};
};

}  // namespace ferry::exec
