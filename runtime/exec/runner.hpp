// ⑧⑨ execute, then reply or forward: runs a mobile call whose code is
// resident against this node's objects, serves the runtime API the code
// calls (cx.local, cx.forward, cx.invoke), and sends the result to the
// call's origin — or hands the continuation back to the node to route.
//
// Threads: run() is called where the dispatch policy put the call (an
// executor, or in place on the driving thread); nested calls block their
// executor until answered and are refused on the driving thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <ferry/store.hpp>

#include "calls/call_table.hpp"
#include "code/loader.hpp"
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
  runner(node_identity who, store& objects, session::member& member, calls::call_table& calls,
         dispatch_policy& policy, std::function<void(wire::frame&&)> route)
      : who_(std::move(who)),
        store_(objects),
        persistent_(objects.persistent()),
        member_(member),
        calls_(calls),
        policy_(policy),
        route_(std::move(route)) {}

  /// Run invoke frame `f` with resident `code`, then reply or forward.
  void run(code::code_entry* code, wire::frame&& f);
  /// Send an error frame for call `call` to `to`.
  void reply_error(wire::node_index to, std::uint64_t call, const status& s) const;

  // call_host
  bool local(call_context& cx, const ferry_ref& r, std::uint64_t size, void** out) override;
  bool read(call_context& cx, const ferry_ref& r, void* out, std::uint64_t size) override;
  bool forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
               std::uint64_t size) override;
  bool invoke(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
              void* result, std::uint64_t result_size) override;
  [[nodiscard]] std::uint32_t node_id() const override { return who_.index; }
  [[nodiscard]] std::uint32_t node_kind() const override { return who_.kind; }
  [[nodiscard]] const char* node_triple() const override { return who_.triple.c_str(); }
  [[nodiscard]] const char* node_cpu() const override { return who_.cpu.c_str(); }

 private:
  /// The invoke body of a call `cx` makes to `fn` on `target` (forward or nested).
  bool continuation(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
                    const char* what, wire::invoke_body& out);

  /// Seal (store::flush) every object `cx` obtained a local pointer to; the
  /// first failure, if any. Objects removed meanwhile are skipped.
  status seal(const call_context& cx);

  node_identity who_;
  store& store_;
  bool persistent_;  ///< seal touched objects when a call ends (a memory store keeps no checksum at rest)
  session::member& member_;
  calls::call_table& calls_;
  dispatch_policy& policy_;
  std::function<void(wire::frame&&)> route_;
};

}  // namespace ferry::exec
