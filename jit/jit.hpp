// jit/jit.hpp — run code objects: safe, cached ORC JIT execution.
//
// One `ferry::jit` per node. `load(code_object)` picks the variant that runs
// on this machine, checks it, compiles it off the caller's thread and hands
// back a `jit_function`: a refcounted handle whose call operator runs the
// code object's uniform entry (`ferry_entry_fn`, see <ferry/code_object.hpp>).
//
// Pipeline of one load (docs/jit.md has the full policy and measured costs):
//   1. variant selection: triple (arch + OS) equal to the host's, producer
//      LLVM major equal to ours, and every CPU feature the variant needs
//      (its explicit "+feature"s and those its CPU implies) present on the
//      host. Among eligible variants the most specialised wins. None ->
//      errc::no_matching_variant, naming what was offered and why not.
//   2. integrity: with `trusted_signers` set, the code object must carry a
//      valid signature by one of them (errc::unsigned_code,
//      errc::untrusted_signer, errc::bad_signature); the variant's bitcode
//      must match its BLAKE2b-256 hash (errc::corrupt) — both before any
//      LLVM parser sees a byte.
//   3. cache: a compiled object file for hash(bitcode, target, CPU,
//      features, tier, LLVM version) in memory or in the cache directory is
//      linked directly, without parsing bitcode (about 0.1 ms).
//   4. otherwise parse (errc::bad_format), verify (errc::bad_format), policy
//      check (errc::policy_violation: inline asm, TLS, ifuncs, static
//      constructors, data layout or triple mismatch, undefined symbols
//      outside the allow-list — each error names the symbol or construct),
//      compile (errc::compile_error). With `trust::untrusted` steps 4's parse,
//      verify, policy and codegen run in a sandboxed helper process
//      (`ferry-jit-check`) so that a hostile buffer that crashes or hangs
//      LLVM costs an error (errc::corrupt / errc::timeout), never the node.
//   5. link the object into its own JITDylib (one resource tracker per
//      loaded code object); resolve symbols only against the runtime API the
//      node supplies and an allow-listed subset of process symbols.
//
// Lifetime: the engine keeps each loaded code object resident until
// `unload(id)`. Every `jit_function` copy (and so every call in flight that
// holds one) keeps the machine code alive: unloading never frees code that
// is running; the code goes away when the last holder lets go. Loading again
// after an unload relinks from the cache.
//
// Tiers: code first runs compiled with fast codegen (`jit_tier::fast`);
// after `hot_call_threshold` calls through a handle, or once its calls have
// run `hot_run_time` in all (a few long calls are as hot as many short
// ones), the engine recompiles it optimized (IR O2 + codegen O2) in the
// background and swaps the entry atomically. Calls already running finish on the old code, which stays
// alive as long as the code object is loaded.
//
// Thread safety: every member of `jit` and `jit_function` may be called from
// any thread. `load()` does no LLVM work on the calling thread: callbacks run
// on an engine worker, or on the calling thread when the code is resident.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/ferry.h>
#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

namespace ferry {

/// Code generation level of compiled code.
enum class jit_tier : std::uint8_t {
  fast = 0,       ///< codegen level None, no IR passes: ~0.6 ms for a small function
  optimized = 1,  ///< IR O2 pipeline + codegen O2: runs at native speed
};

/// How far a node trusts the peers it accepts code from.
enum class jit_trust : std::uint8_t {
  /// Integrity hash only: protects against accidental corruption. LLVM
  /// parses and compiles in the node process.
  trusted = 0,
  /// Parse, verify, policy check and codegen in a sandboxed helper process
  /// (rlimits, killed on timeout); the node only links the resulting object.
  untrusted = 1,
};

/// The machine code is generated for (defaults: this host).
struct jit_target {
  std::string triple;    ///< "x86_64-unknown-linux-gnu"
  std::string cpu;       ///< "znver3"
  std::string features;  ///< "+sse2,+avx2,-avx512f,..."
  /// This process's target, as LLVM detects it.
  static jit_target host();
};

/// libc/libm functions mobile code may call by default: memory and string
/// primitives and pure math. Nothing that touches files, processes, the
/// environment or dynamic loading.
const std::vector<std::string>& default_allowed_process_symbols();

/// Engine settings. Every field has a usable default.
struct jit_config {
  /// The runtime API mobile code may call (ferry_local, ferry_forward,
  /// ferry_invoke, ferry_node_id, ...): name -> address in this process.
  /// These names are always allowed; calls to them resolve here, never to a
  /// process symbol of the same name. If a code object declares one that is
  /// not in this map, the load fails with errc::policy_violation.
  std::map<std::string, void*> runtime_symbols;
  /// Process symbols (libc/libm) mobile code may use; looked up in the
  /// process. Everything else is refused before compiling.
  std::vector<std::string> allowed_process_symbols = default_allowed_process_symbols();
  /// true: a module may call any symbol of this process (and of the
  /// libraries it loaded with RTLD_GLOBAL), not only the allow-list. For
  /// code the process trusts like one of its own shared libraries: the UCX
  /// ifunc compat library's non-`pure` ifuncs (docs/ifunc.md). Refused with
  /// trust::untrusted.
  bool any_process_symbol = false;
  /// true: `entry_symbol` must be the uniform entry `ferry_entry_fn`.
  /// false: it must only be defined and exported, with any signature; the
  /// caller reaches the code through jit_function::lookup and must not call
  /// the handle (ifunc libraries: NAME_main, docs/ifunc.md). Refused with
  /// trust::untrusted.
  bool uniform_entry = true;

  /// Compiled-object cache directory. Empty: $XDG_CACHE_HOME/ferry/jit, or
  /// ~/.cache/ferry/jit. Created on first use.
  std::filesystem::path cache_dir;
  bool disk_cache = true;  ///< false: memory cache only
  /// Bytes of compiled objects kept in memory (oldest dropped first).
  std::size_t memory_cache_bytes = std::size_t{64} << 20;

  /// Tier of the first compile. `optimized` skips the fast tier entirely.
  jit_tier first_tier = jit_tier::fast;
  /// Calls through one loaded code object after which it is recompiled
  /// optimized in the background. 0: never (neither by calls nor by time).
  std::uint64_t hot_call_threshold = 1000;
  /// Run time of its calls (reported with jit_function::ran_for) after
  /// which a code object is recompiled optimized, however few the calls:
  /// a graph kernel's step runs for tens of milliseconds, a few times.
  std::chrono::microseconds hot_run_time{20000};

  /// Compile threads inside the engine (at least 1).
  unsigned threads = 1;
  /// Largest total size of a code object's global variables (its tables
  /// and constants), checked before anything is compiled: a few KiB of
  /// bitcode can declare a 256 MiB zero-filled table that would cost the
  /// node that much memory, and a cache file as large. Larger code fails
  /// with errc::too_large. 0: no limit.
  std::uint64_t max_data_bytes = std::uint64_t{64} << 20;
  /// Most bytes of compiled objects linked at once (every tier of every
  /// loaded code object). A load or tier-up that would pass it fails with
  /// errc::out_of_memory; unloading code makes room. 0: no limit.
  std::uint64_t max_code_bytes = std::uint64_t{1} << 30;

  /// Meter mobile code (docs/security.md): every compiled function calls
  /// `ferry_fuel` (a runtime symbol the node supplies) at entry and once
  /// per block of loop iterations, so the node can stop a call whose fuel
  /// or deadline ran out. false: no accounting (a little faster; running
  /// code then cannot be stopped). Stack probes are added either way.
  bool meter = true;
  /// Bounds-check mobile code (docs/security.md, "Contained code"): every
  /// load, store, atomic and memory intrinsic is compared with the regions
  /// the running call may touch (its stack, the module's globals, memory the
  /// runtime handed to it) through `ferry_bounds`, a runtime symbol the node
  /// supplies; an access outside them ends the call with errc::memory_fault.
  /// false: the `trusted` policy, unchecked (`ferry node --unchecked`).
  bool bounds_checks = true;

  jit_trust trust = jit_trust::trusted;
  /// Public keys whose signatures this engine accepts (<ferry/code_signing.hpp>).
  /// Non-empty: every code object must be signed by one of them, checked
  /// before variant selection; unsigned, foreign-signed or tampered code
  /// fails its load (errc::unsigned_code / untrusted_signer / bad_signature).
  /// Empty: signatures are not checked.
  std::vector<signing_public_key> trusted_signers;
  /// Untrusted mode: the helper command (argv). Empty: `ferry-jit-check`
  /// from $FERRY_JIT_CHECK, next to libferry (../bin), or next to the
  /// executable. The engine appends its own arguments.
  std::vector<std::string> check_command;
  /// Untrusted mode: wall-clock limit of one check+compile in the helper.
  std::chrono::milliseconds check_timeout{10000};
  /// Untrusted mode: address-space limit of the helper (RLIMIT_AS); 0: none
  /// (sanitizer builds need that: their shadow memory is terabytes of
  /// address space).
  std::uint64_t check_memory_bytes = std::uint64_t{2} << 30;

  /// Target to generate code for; empty fields mean the host's. Variant
  /// selection uses the same description. An aarch64 `cpu` given without
  /// `features` gets exactly that CPU's architecture extensions (so a
  /// "cortex-a72" node, e.g. an emulated DPU under qemu, refuses SVE code
  /// even where host detection sees nothing); an unknown CPU fails create()
  /// with errc::unsupported.
  jit_target target;
};

/// Counters since the engine started. Tests use them to assert, e.g., that a
/// second load did not compile again.
struct jit_stats {
  std::uint64_t loads = 0;        ///< load() calls
  std::uint64_t compiles = 0;     ///< bitcode compiled (either tier, either process)
  std::uint64_t resident_hits = 0;  ///< load() answered by code already linked
  std::uint64_t memory_hits = 0;  ///< object file from the memory cache
  std::uint64_t disk_hits = 0;    ///< object file from the cache directory
  std::uint64_t coalesced = 0;    ///< load() joined a load of the same code in progress
  std::uint64_t tier_ups = 0;     ///< optimized recompiles swapped in
  std::uint64_t sandbox_checks = 0;   ///< helper round trips (untrusted mode)
  std::uint64_t sandbox_failures = 0;  ///< helper crashed, hung or was killed
  std::uint64_t live_code = 0;    ///< linked code objects not yet freed (includes unloaded ones still held)
  std::uint64_t failures = 0;     ///< loads that ended in an error
  std::uint64_t warmed_up = 0;    ///< 1 once the start-up warm-up compiled and linked (not in sandboxed engines)
  /// Optimized recompiles requested and not finished (queued or compiling):
  /// until it is 0 again, hot code still runs its fast-tier form and the
  /// compile takes CPU time from the calls (a benchmark's warm-up waits).
  std::uint64_t recompiling = 0;
  /// Distinct variants (triple, CPU, features, LLVM version) variant
  /// selection has judged; each verdict is remembered. The warm-up judges
  /// the plugin's default variant, so it is 1 before any load.
  std::uint64_t variants_judged = 0;
};

namespace detail {
struct jit_instance;
/// The part of a loaded code object every call touches, in the header so a
/// call inlines to a few loads and one indirect call.
struct jit_call_state {
  std::atomic<ferry_entry_fn> entry{nullptr};
  std::atomic<std::uint64_t> calls{0};  ///< counted while hot_at != UINT64_MAX
  /// Call count at which to tier up; UINT64_MAX once requested, or never.
  std::atomic<std::uint64_t> hot_at{UINT64_MAX};
  std::atomic<std::uint64_t> run_ns{0};  ///< summed while hot_at != UINT64_MAX
  std::uint64_t hot_run_ns = UINT64_MAX;  ///< run time at which to tier up (set before the first call)
};
/// Out of line: schedule the optimized recompile (at most once).
void request_tier_up(jit_instance& inst);
}  // namespace detail

/// A loaded code object: call it like its uniform entry. Copies share one
/// reference; the code stays alive while any copy exists.
class jit_function {
 public:
  jit_function() = default;

  /// Run the entry: returns its status (0 or a ferry::errc value). Counts
  /// the call towards the hot threshold.
  std::int32_t operator()(ferry_context* cx, const void* args, void* result) const {
    detail::jit_call_state& s = *state_;
    // Count only while a tier-up is pending; once decided, a call is two
    // loads and the indirect call. A racy count is fine: it only decides
    // when to optimize, and a relaxed load+store costs far less than an
    // atomic read-modify-write.
    if (const std::uint64_t hot = s.hot_at.load(std::memory_order_relaxed); hot != UINT64_MAX) [[unlikely]] {
      const std::uint64_t n = s.calls.load(std::memory_order_relaxed) + 1;
      s.calls.store(n, std::memory_order_relaxed);
      if (n >= hot) detail::request_tier_up(*p_);
    }
    return s.entry.load(std::memory_order_acquire)(cx, args, result);
  }
  /// A call through this handle ran for `d`: counts towards the run time
  /// that makes the code hot (jit_config::hot_run_time). The caller times
  /// the run; once the tier is decided this is one load.
  void ran_for(std::chrono::nanoseconds d) const {
    detail::jit_call_state& s = *state_;
    if (s.hot_at.load(std::memory_order_relaxed) == UINT64_MAX) return;
    const std::uint64_t ns = s.run_ns.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d.count());
    s.run_ns.store(ns, std::memory_order_relaxed);  // racy, as the call count: it only decides when
    if (ns >= s.hot_run_ns) detail::request_tier_up(*p_);
  }
  /// Have this code object run at the optimized tier: `done` gets ok once
  /// calls through every handle run optimized code (at once, on this
  /// thread, if they already do), or why they will not: compile_error (the
  /// recompile failed; the fast tier keeps serving), unsupported (this
  /// engine never tiers up: jit_config::hot_call_threshold 0). Otherwise
  /// `done` runs on the JIT worker that recompiled, after the swap (or, if
  /// the engine is shutting down, with cancelled); it is dropped uncalled
  /// if the code is unloaded and its last handle goes first. What a preload asking
  /// for the optimized tier waits for (docs/jit.md, "Preloading").
  void optimize(std::function<void(status)> done) const;
  /// The current entry (fast or optimized tier). Valid while this handle
  /// (or a copy) lives; calling it directly does not count towards tier-up.
  [[nodiscard]] ferry_entry_fn entry() const noexcept { return state_->entry.load(std::memory_order_acquire); }
  [[nodiscard]] jit_tier tier() const noexcept;
  [[nodiscard]] const object_id& id() const noexcept;
  /// Address, in the current tier, of the code object's own mobile function
  /// (`code_object::symbol`) or one of its `references`; nullptr for any
  /// other name or when the module does not define it. Valid while this
  /// handle lives. After a tier-up the same symbol has a second address.
  [[nodiscard]] void* lookup(std::string_view symbol) const;
  /// Which of those symbols `address` is, in any tier of this code object:
  /// how the runtime maps `&fn` taken inside mobile code (ferry_forward /
  /// ferry_invoke) back to a code object: written to `symbol` (whose
  /// capacity is reused: no allocation on a warm path); false if none.
  [[nodiscard]] bool symbol_at(const void* address, std::string& symbol) const;
  /// Calls counted towards tier-up (counting stops once the tier is decided).
  [[nodiscard]] std::uint64_t calls() const noexcept { return state_->calls.load(std::memory_order_relaxed); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  friend class jit;
  friend struct jit_handles;
  jit_function(std::shared_ptr<detail::jit_instance> p, detail::jit_call_state* s) : p_(std::move(p)), state_(s) {}
  std::shared_ptr<detail::jit_instance> p_;
  detail::jit_call_state* state_ = nullptr;  // lives inside *p_
};

/// The per-node JIT engine.
class jit {
 public:
  using load_callback = std::function<void(result<jit_function>)>;

  /// Create the engine (about 1 ms: creates the LLJIT and its worker threads).
  static result<std::unique_ptr<jit>> create(jit_config config = {});
  /// Waits for compiles in progress; pending loads complete with
  /// errc::cancelled. Handles that outlive the engine stay callable.
  ~jit();
  jit(const jit&) = delete;
  jit& operator=(const jit&) = delete;

  /// Load `code` (see the pipeline above); `done` receives the handle or a
  /// typed error. Concurrent loads of the same code share one compile.
  /// Cost on the calling thread: the code object's id (a hash of its
  /// manifest) and, unless it is resident, one copy of it.
  void load(const code_object& code, load_callback done);
  std::future<result<jit_function>> load(const code_object& code);

  /// Drop the engine's reference to code object `id`. Returns errc::not_found
  /// if it is not resident. Handles still held keep their code alive.
  status unload(const object_id& id);
  /// Is `id` resident (loaded and not unloaded)?
  [[nodiscard]] bool is_loaded(const object_id& id) const;

  [[nodiscard]] jit_stats stats() const;
  [[nodiscard]] const jit_config& config() const noexcept;
  /// The target code is generated for: config().target with every empty
  /// field filled in (from the host, or, for a named aarch64 CPU, from
  /// that CPU's own features).
  [[nodiscard]] const jit_target& target() const noexcept;
  /// The cache directory in use (empty when the disk cache is off).
  [[nodiscard]] const std::filesystem::path& cache_dir() const noexcept;

  struct impl;

 private:
  explicit jit(std::shared_ptr<impl> p);
  std::shared_ptr<impl> p_;
};

}  // namespace ferry
