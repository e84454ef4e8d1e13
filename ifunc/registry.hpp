// ifunc/registry.hpp — the ifuncs a process has registered, keyed by content
// hash (library.hpp key_of), each JIT-compiled through ferry's jit.
//
// One registry per process, shared by both front ends (the UCX compat API,
// ifunc/ucp_ifunc.cpp, and ferry's own <ferry/ifunc.h>, ifunc/ferry_ifunc.cpp);
// entries belong to a scope (a UCP context, or a ferry ifunc context), so two
// contexts register independently as in the prototype. Every member may be
// called from any thread, also from inside a running NAME_main (recursive
// sends, registration of another ifunc).
//
// Linking: each front end says how its ifuncs link (`linking`): the API they
// may call beyond the allow-list, and whether the JIT meters them. A `pure`
// ifunc (and every ifunc of a front end that links all of them pure) is
// compiled by an engine that resolves only ferry's allow-list
// (default_allowed_process_symbols) and the front end's symbols; anything
// else is refused before compiling (errc::policy_violation, naming the
// symbol). Other ifuncs may call any symbol of the process and of their
// NAME.deps libraries, loaded first. One engine per (front end, purity).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

#include "exec/run_verdict.hpp"
#include "jit/jit.hpp"
#include "wire/ifunc_frame.hpp"

namespace ferry::ifunc {

using main_fn = void (*)(void* payload, std::size_t payload_size, void* target_args);
using payload_bound_fn = std::size_t (*)(void* source_args, std::size_t source_args_size);
using payload_init_fn = int (*)(void* source_args, std::size_t source_args_size, void* payload,
                                std::size_t* payload_size);

/// Which caller registered an ifunc (a ucp_context_h for the compat API, a
/// ferry_ifunc_context for ferry's).
using scope = const void*;

/// How a front end links its ifuncs. One object per front end, living as
/// long as the process (the registry keys its engines by its address).
struct linking {
  std::string name;  ///< names its JIT cache directories: $XDG_CACHE_HOME/ferry/ifunc-<name>[-pure]
  /// The front end's API, callable from every ifunc (recursive sends).
  std::map<std::string, void*> runtime_symbols;
  /// Every ifunc is linked against the allow-list, whatever its `pure`
  /// flag says, and its NAME.deps are not loaded (code from peers: ferry
  /// nodes).
  bool all_pure = false;
  /// The JIT meters the code (ferry_fuel: docs/security.md), so the caller
  /// can stop it by fuel.
  bool metered = false;
  /// Not empty: the JIT loads only code signed by one of these keys and
  /// refuses the rest before LLVM parses a byte (jit_config::trusted_signers:
  /// errc::unsigned_code, untrusted_signer, bad_signature). Nodes started
  /// with --trust-keys.
  std::vector<signing_public_key> trusted_signers;
};

/// One registered ifunc. The machine code lives while any holder of the
/// shared_ptr does: a deregistered ifunc whose NAME_main is still running, or
/// whose messages still exist, keeps its code until they are gone.
struct entry {
  object_id key;
  std::uint64_t handle = 0;  ///< never reused within the process
  scope owner = nullptr;
  std::string name;
  bool pure = false;
  const linking* linked = nullptr;  ///< the front end that registered it
  std::vector<std::uint8_t> code_section;  ///< wire::encode_ifunc_code, shipped with first messages
  jit_function code;
  main_fn main = nullptr;
  payload_bound_fn payload_bound = nullptr;
  payload_init_fn payload_init = nullptr;
  /// On a node: the dispatch policy's verdict for its next NAME_main, in
  /// place or on an executor (runtime/exec/dispatch.hpp).
  exec::run_verdict verdict;

  /// First message to `peer` (an endpoint, a member)? Records it: the next is not.
  bool first_send_to(std::uint64_t peer);
  /// Forget that `peer` has the code (it restarted, or said it lost it).
  void forget_peer(std::uint64_t peer);

 private:
  std::mutex mu_;
  std::unordered_set<std::uint64_t> sent_;
};

class registry {
 public:
  /// The process's registry.
  static registry& instance();

  /// Register `code` in `owner`, linked as `how` says: JIT-compile it and
  /// find its three functions.
  /// Already registered (same key, same scope): the existing entry, as the
  /// prototype returned the existing handle. Errors: errc::bad_format (no
  /// NAME_main, payload functions missing, bitcode that does not parse),
  /// policy_violation (a pure ifunc calls outside the allow-list),
  /// no_matching_variant, io_error (a dependency does not load).
  result<std::shared_ptr<entry>> add(scope owner, wire::ifunc_code code, const linking& how);
  std::shared_ptr<entry> find(scope owner, const object_id& key) const;
  /// The ifunc named `name` registered in `owner` (nullptr: none).
  std::shared_ptr<entry> find(scope owner, std::string_view name) const;
  std::shared_ptr<entry> find(std::uint64_t handle) const;
  /// Deregister: unload its code (once the last holder lets go).
  /// errc::not_found if `handle` is not registered (twice, or never).
  status remove(std::uint64_t handle);
  /// Deregister everything `owner` registered (its context is destroyed).
  void remove_scope(scope owner);
  /// Create now the engine that registrations linked `how` compile with (the
  /// pure one when `how` makes every ifunc pure), so that its start-up
  /// warm-up (jit.hpp) runs in the background from here rather than inside
  /// the first registration: a node calls it as it starts, and its first
  /// ifunc message then waits for a compile (or a cache hit) only. Each
  /// successful prepare holds the engine until its release().
  status prepare(const linking& how);
  /// Let go of what prepare(how) held. When no node holds the engine and no
  /// registered ifunc came from it, it is shut down here, its warm-up
  /// waited for: a process whose nodes have stopped runs no compile of its
  /// own into exit, where LLVM's statics are destroyed under it (this
  /// registry is a static too, made before LLVM's, so destroyed after
  /// them: too late to stop a compile). Engines made by
  /// add() alone (the compat API) live as long as the process; their
  /// warm-up ends before add() returns.
  void release(const linking& how);
  /// Engines alive now (prepared or made by add(), not yet shut down).
  [[nodiscard]] std::size_t engines() const;
  /// Whether that engine exists and has finished its warm-up; false also
  /// while a registration holds the engines (it may compile for seconds):
  /// this never waits.
  [[nodiscard]] bool warmed_up(const linking& how) const;

 private:
  registry() = default;
  result<jit*> engine(const linking& how, bool pure);
  void unload(const entry& e);

  struct scoped_key {
    scope owner;
    object_id key;
    friend bool operator==(const scoped_key&, const scoped_key&) = default;
  };
  struct scoped_key_hash {
    std::size_t operator()(const scoped_key& k) const {
      return std::hash<object_id>{}(k.key) ^ std::hash<const void*>{}(k.owner);
    }
  };

  mutable std::mutex add_mu_;  // one registration at a time: JIT work happens outside mu_
  struct engine_slot {
    std::unique_ptr<jit> engine;
    unsigned held = 0;  // prepare()s not yet released
  };
  std::map<std::pair<const linking*, bool>, engine_slot> engines_;  // (front end, pure); under add_mu_
  mutable std::shared_mutex mu_;
  std::unordered_map<scoped_key, std::shared_ptr<entry>, scoped_key_hash> by_key_;
  std::unordered_map<std::uint64_t, std::shared_ptr<entry>> by_handle_;
  std::uint64_t next_handle_ = 1;
};

}  // namespace ferry::ifunc
