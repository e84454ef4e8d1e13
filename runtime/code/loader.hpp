// ⑦ ensure code: make the code a call names resident on this node.
//
//   resident (loaded before)        -> the call is ready now
//   pushed with the call            -> decode, check its id, JIT-load it
//   neither                         -> pull it from the call's code holder
//                                      (a code_request; calls waiting for the
//                                      same code share one request)
//
// Code is identified by content id, or by mangled symbol when a forward
// names a function by symbol only (its id is learnt from the response).
// Requests go through the process's call table, so a holder that dies fails
// the calls waiting on it at once (peer_dead), not at their deadline.
//
// Threads: ensure() and the request completions run on the driving thread;
// the JIT loads on its own threads and posts the result back.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ferry/code_object.hpp>
#include "jit/jit.hpp"

#include "calls/call_table.hpp"
#include "exec/run_verdict.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::code {

/// A code object this node knows, and its compiled form once loaded.
/// Entries are never freed while the node runs, and `fn`, once set, is never
/// replaced: a running call uses both by reference.
struct code_entry {
  code_object code;
  object_id id;
  /// Empty until loaded. Its symbol_at() turns the address cx.forward(&f)
  /// passes into f's symbol, in whichever tier is running.
  jit_function fn;
  /// The code may wait inside a call (it names ferry_invoke, ferry_fetch or ferry_migrate,
  /// which block until answered): it never runs on the network thread.
  bool may_block = true;
  /// Its calls may move on to other nodes (it names ferry_forward).
  bool may_forward = true;
  /// The dispatch policy's verdict for the next call (runtime/exec/dispatch.hpp).
  exec::run_verdict verdict;
};

class loader {
 public:
  /// The call's code is resident: run it (driving thread).
  using ready_fn = std::function<void(code_entry*, wire::frame&&)>;
  /// The call cannot get its code: answer its origin with `s`.
  using fail_fn = std::function<void(const wire::invoke_body&, const status&)>;

  loader(jit& engine, session::member& member, calls::call_table& calls, ready_fn ready, fail_fn fail)
      : jit_(engine), member_(member), calls_(calls), ready_(std::move(ready)), fail_(std::move(fail)) {}

  /// Make the code of invoke frame `f` resident, then hand `f` to `ready`
  /// (at once when it is resident). Driving thread.
  void ensure(wire::frame&& f);
  /// Encoded code object this node holds, by id or else by symbol: what the
  /// code server sends to a node that misses it. Any thread.
  result<std::vector<std::uint8_t>> encoded(const object_id& id, std::string_view symbol);
  /// The answer to a code request (driving thread; calls::completion).
  void pulled(const object_id& wanted, const std::string& symbol, std::span<const std::uint8_t> blob, status s);

 private:
  code_entry* resident(const object_id& id);
  code_entry* resident_by_symbol(std::string_view symbol);
  void pull(const object_id& id, const std::string& symbol, wire::node_index holder);
  void load(const object_id& id, code_object code);
  void fail_waiting(std::vector<wire::frame>&& waiting, const status& s);

  jit& jit_;
  session::member& member_;
  calls::call_table& calls_;
  ready_fn ready_;
  fail_fn fail_;

  std::mutex mu_;  // code_ (executors read entries; the code server looks up)
  std::unordered_map<object_id, std::unique_ptr<code_entry>> code_;
  // Driving thread only: calls waiting for code, by code id / by symbol.
  std::unordered_map<object_id, std::vector<wire::frame>> waiting_for_code_;
  std::unordered_map<std::string, std::vector<wire::frame>> waiting_for_symbol_;
};

}  // namespace ferry::code
