// ifunc/registry.hpp — the ifuncs a process has registered, keyed by content
// hash (library.hpp key_of), each JIT-compiled through ferry's jit.
//
// One registry per process; entries belong to a scope (the UCP context of
// the compat API), so two contexts register independently as in the
// prototype. Every member may be called from any thread, also from inside a
// running NAME_main (recursive sends, registration of another ifunc).
//
// Linking: a `pure` ifunc is compiled by an engine that resolves only ferry's
// allow-list (default_allowed_process_symbols) and the runtime symbols the
// front end supplies (the ifunc API itself); anything else is refused before
// compiling (errc::policy_violation, naming the symbol). Other ifuncs may call
// any symbol of the process and of their NAME.deps libraries, loaded first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

#include "ifunc_frame.hpp"
#include "jit.hpp"

namespace ferry::ifunc {

using main_fn = void (*)(void* payload, std::size_t payload_size, void* target_args);
using payload_bound_fn = std::size_t (*)(void* source_args, std::size_t source_args_size);
using payload_init_fn = int (*)(void* source_args, std::size_t source_args_size, void* payload,
                                std::size_t* payload_size);

/// Which caller registered an ifunc (a ucp_context_h for the compat API).
using scope = const void*;

/// One registered ifunc. The machine code lives while any holder of the
/// shared_ptr does: a deregistered ifunc whose NAME_main is still running, or
/// whose messages still exist, keeps its code until they are gone.
struct entry {
  object_id key;
  std::uint64_t handle = 0;  ///< never reused within the process
  scope owner = nullptr;
  std::string name;
  bool pure = false;
  std::vector<std::uint8_t> code_section;  ///< wire::encode_ifunc_code, shipped with first messages
  jit_function code;
  main_fn main = nullptr;
  payload_bound_fn payload_bound = nullptr;
  payload_init_fn payload_init = nullptr;

  /// First message to `peer` (an endpoint)? Records it: the next is not.
  bool first_send_to(const void* peer);

 private:
  std::mutex mu_;
  std::unordered_set<const void*> sent_;
};

class registry {
 public:
  /// The process's registry. `runtime_symbols` (the front end's API, e.g.
  /// ucp_ifunc_send_nbix) are callable from every ifunc, pure or not; only
  /// the first call's map counts.
  static registry& instance(const std::map<std::string, void*>& runtime_symbols);

  /// Register `code` in `owner`: JIT-compile it and find its three functions.
  /// Already registered (same key, same scope): the existing entry, as the
  /// prototype returned the existing handle. Errors: errc::bad_format (no
  /// NAME_main, payload functions missing, bitcode that does not parse),
  /// policy_violation (a pure ifunc calls outside the allow-list),
  /// no_matching_variant, io_error (a dependency does not load).
  result<std::shared_ptr<entry>> add(scope owner, wire::ifunc_code code);
  std::shared_ptr<entry> find(scope owner, const object_id& key) const;
  std::shared_ptr<entry> find(std::uint64_t handle) const;
  /// Deregister: unload its code (once the last holder lets go).
  /// errc::not_found if `handle` is not registered (twice, or never).
  status remove(std::uint64_t handle);

 private:
  explicit registry(std::map<std::string, void*> runtime_symbols);
  result<jit*> engine(bool pure);

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

  std::map<std::string, void*> runtime_symbols_;
  std::mutex add_mu_;  // one registration at a time: JIT work happens outside mu_
  std::unique_ptr<jit> pure_engine_, open_engine_;
  mutable std::shared_mutex mu_;
  std::unordered_map<scoped_key, std::shared_ptr<entry>, scoped_key_hash> by_key_;
  std::unordered_map<std::uint64_t, std::shared_ptr<entry>> by_handle_;
  std::uint64_t next_handle_ = 1;
};

}  // namespace ferry::ifunc
