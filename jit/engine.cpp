// The ferry::jit engine: variant selection, integrity, cache, compile
// (in-process or sandboxed), link, tier-up and unload. docs/jit.md.
#include "jit.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <optional>
#include <thread>
#include <unordered_map>

#include <sodium.h>
#include <dlfcn.h>
#include <unistd.h>

#include <fmt/format.h>
#include <llvm/ExecutionEngine/Orc/EPCEHFrameRegistrar.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/MapperJITLinkMemoryManager.h>
#include <llvm/ExecutionEngine/Orc/MemoryMapper.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>

#include "core/task_dispatcher.hpp"
#include "compile.hpp"
#include "contain.hpp"
#include "error.hpp"
#include "object_cache.hpp"
#include "sandbox.hpp"
#include "target.hpp"

namespace ferry {

const std::vector<std::string>& default_allowed_process_symbols() {
  static const std::vector<std::string> names = {
      // memory and strings (LLVM also lowers intrinsics and idioms to these)
      "memcpy", "memmove", "memset", "memcmp", "bcmp", "memchr", "strlen", "strnlen", "strcmp", "strncmp", "strchr",
      "strrchr", "strstr",
      // libm
      "sqrt", "sqrtf", "cbrt", "cbrtf", "exp", "expf", "exp2", "exp2f", "expm1", "log", "logf", "log2", "log2f",
      "log10", "log10f", "log1p", "pow", "powf", "sin", "sinf", "cos", "cosf", "tan", "tanf", "asin", "acos", "atan",
      "atan2", "atan2f", "sinh", "cosh", "tanh", "fabs", "fabsf", "floor", "floorf", "ceil", "ceilf", "round",
      "roundf", "trunc", "truncf", "rint", "nearbyint", "lround", "llround", "fmod", "fmodf", "fmin", "fmax", "fminf",
      "fmaxf", "hypot", "ldexp", "frexp", "modf", "copysign", "erf",
      // compiler runtime helpers codegen may call (128-bit division, powi)
      "__divti3", "__udivti3", "__modti3", "__umodti3", "__powidf2", "__powisf2"};
  return names;
}

namespace detail {

// One resident code object: its linked tiers and the entry in use.
struct jit_instance : std::enable_shared_from_this<jit_instance> {
  std::shared_ptr<jit::impl> engine;  // keeps the LLJIT alive until the code is removed
  object_id id;
  std::string name;
  std::string entry_symbol;
  std::vector<std::string> exported;  // the mobile function's symbol + its references
  std::shared_ptr<const code_variant> variant;  // kept only while a tier-up may follow
  bool tiers_up = false;  // this engine recompiles hot code (set when built, then fixed)
  jit_call_state call;
  std::atomic<jit_tier> tier{jit_tier::fast};
  std::atomic<bool> tier_up_requested{false};
  std::mutex mu;
  // optimize() callers waiting for the tier-up, and its outcome once it
  // ended (both guarded by mu).
  std::vector<std::function<void(status)>> optimized_waiters;
  std::optional<status> tier_up_outcome;
  std::vector<llvm::orc::JITDylib*> dylibs;  // every linked tier; removed together
  struct symbol_address {
    void* at;
    std::string symbol;
    jit_tier tier;
  };
  std::vector<symbol_address> symbols;  // `exported`, in every linked tier
  std::uint64_t code_bytes = 0;         // compiled objects linked, every tier (guarded by mu)

  ~jit_instance();
};

}  // namespace detail

// Builds handles: jit_function's constructor is private to keep the state
// pointer and the owning reference together.
struct jit_handles {
  static jit_function make(std::shared_ptr<detail::jit_instance> p) {
    detail::jit_call_state* s = &p->call;
    return jit_function(std::move(p), s);
  }
};

struct jit::impl : std::enable_shared_from_this<jit::impl> {
  jit_config cfg;
  jitd::node_target target;
  llvm::StringSet<> allowed;  // runtime API + process allow-list: what a module may leave undefined
  std::filesystem::path cache_path;
  std::unique_ptr<jitd::object_cache> cache;
  std::unique_ptr<jitd::sandbox> sandbox;
  std::unique_ptr<llvm::orc::LLJIT> lljit;

  struct {
    std::atomic<std::uint64_t> loads, compiles, resident_hits, memory_hits, disk_hits, coalesced, tier_ups,
        sandbox_checks, sandbox_failures, live_code, failures, warmed_up, recompiling;
  } n{};
  std::atomic<std::uint64_t> dylib_seq{0};
  std::atomic<std::uint64_t> linked_bytes{0};  // jit_config::max_code_bytes

  mutable std::mutex mu;
  std::unordered_map<object_id, std::shared_ptr<detail::jit_instance>> resident;
  std::unordered_map<object_id, std::vector<load_callback>> pending;

  std::mutex compile_mu;  // compiles in progress, by cache key (hex)
  std::unordered_map<std::string, std::shared_future<result<jitd::object_bytes>>> compiling;

  // Compiles, variant selection and tier-ups (created with the LLJIT).
  std::unique_ptr<core::thread_pool_dispatcher> workers;

  explicit impl(jitd::node_target t) : target(std::move(t)) {}

  bool submit(core::task job) { return workers && workers->dispatch(std::move(job)); }

  // Compiled object for `v` at `tier`: memory cache, disk cache, a compile
  // of the same key already running (different code objects, or a tier-up
  // racing a reload, can share bitcode), or a compile of our own.
  llvm::Expected<jitd::object_bytes> object_for(const code_variant& v, const std::string& entry, jit_tier tier) {
    const auto key = jitd::make_cache_key(v, target.description(), tier, cfg.meter, cfg.bounds_checks);
    if (auto obj = cache->find_in_memory(key)) return ++n.memory_hits, obj;
    if (auto obj = cache->find_on_disk(key)) return ++n.disk_hits, obj;
    const std::string hex = jitd::to_hex(key);
    std::shared_ptr<std::promise<result<jitd::object_bytes>>> mine;
    std::shared_future<result<jitd::object_bytes>> theirs;
    {
      std::lock_guard lock(compile_mu);
      // Again under the lock: a compile may have stored it and left meanwhile.
      if (auto obj = cache->find_in_memory(key)) return ++n.memory_hits, obj;
      if (auto it = compiling.find(hex); it != compiling.end()) {
        theirs = it->second;
      } else {
        mine = std::make_shared<std::promise<result<jitd::object_bytes>>>();
        compiling.emplace(hex, mine->get_future().share());
      }
    }
    if (!mine) {
      ++n.coalesced;
      const auto& r = theirs.get();  // the compiling worker never waits on another
      if (!r) return jitd::from_status(r.error());
      return *r;
    }
    auto compiled = compile(v, entry, tier);
    result<jitd::object_bytes> outcome = make_error(errc::internal, "unset");
    if (compiled) {
      ++n.compiles;
      const auto buf = (*compiled)->getBuffer();
      auto obj = std::make_shared<const std::vector<char>>(buf.begin(), buf.end());
      cache->store(key, obj);
      outcome = obj;
    } else {
      outcome = jitd::to_status(compiled.takeError(), errc::compile_error, "compiling");
    }
    mine->set_value(outcome);
    {
      std::lock_guard lock(compile_mu);
      compiling.erase(hex);
    }
    if (!outcome) return jitd::from_status(outcome.error());
    return *outcome;
  }

  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compile(const code_variant& v, const std::string& entry,
                                                              jit_tier tier) {
    if (!sandbox) return jitd::compile_bitcode(v.bitcode, options_for(entry, tier));
    bool helper_failed = false;
    ++n.sandbox_checks;
    auto compiled = sandbox->compile(v.bitcode, entry, tier, &helper_failed);
    if (helper_failed) ++n.sandbox_failures;
    return compiled;
  }

  // How this engine compiles in-process (the sandboxed helper gets the
  // same settings on its command line).
  [[nodiscard]] jitd::compile_options options_for(std::string entry, jit_tier tier) const {
    return {std::move(entry),     tier,
            &allowed,             &target,
            cfg.max_data_bytes,   cfg.meter,
            cfg.any_process_symbol, cfg.uniform_entry,
            cfg.bounds_checks};
  }

  // LLVM's one-time set-up, off the first call's path (compile.hpp): the
  // verdict on the plugin's default variant is made (default_variant), the
  // built-in module is compiled, linked into a JITDylib of its own (the
  // linker has set-up of its own), and dropped. A failure only leaves
  // n.warmed_up at 0 (tests check it); a real compile reports its own.
  void warm_up() {
    code_object usual;
    usual.variants.push_back(jitd::default_variant(target.triple()));
    if (auto chosen = target.select(usual); !chosen) llvm::consumeError(chosen.takeError());
    auto object = jitd::warm_up(options_for({}, cfg.first_tier));
    if (!object) return llvm::consumeError(object.takeError());
    auto jd = lljit->createJITDylib("ferry-warm-up");
    if (!jd) return llvm::consumeError(jd.takeError());
    if (auto e = lljit->addObjectFile(*jd, std::move(*object))) llvm::consumeError(std::move(e));
    else if (auto entry = lljit->lookup(*jd, jitd::kWarmUpEntry); !entry) llvm::consumeError(entry.takeError());
    else ++n.warmed_up;
    llvm::consumeError(lljit->getExecutionSession().removeJITDylib(*jd));
  }

  // Link `tier` of `inst` into a JITDylib of its own and return its entry.
  llvm::Expected<ferry_entry_fn> link(detail::jit_instance& inst, const code_variant& v, jit_tier tier) {
    auto obj = object_for(v, inst.entry_symbol, tier);
    if (!obj) return obj.takeError();
    // Room for it among the code linked already (jit_config::max_code_bytes).
    const std::uint64_t size = (*obj)->size();
    if (cfg.max_code_bytes != 0) {
      std::uint64_t now = linked_bytes.load();
      do {
        if (now + size > cfg.max_code_bytes)
          return jitd::fail(errc::out_of_memory,
                            fmt::format("linking {} ({} bytes of code) would pass this node's limit of {} bytes of "
                                        "compiled code ({} in use; jit_config::max_code_bytes)",
                                        inst.name, size, cfg.max_code_bytes, now));
      } while (!linked_bytes.compare_exchange_weak(now, now + size));
    } else {
      linked_bytes += size;
    }
    struct unreserve {  // until the link succeeds
      std::atomic<std::uint64_t>* bytes;
      std::uint64_t size;
      ~unreserve() {
        if (bytes) *bytes -= size;
      }
    } reserved{&linked_bytes, size};
    auto jd = lljit->createJITDylib(fmt::format("{}.{}", inst.id.to_string(), dylib_seq++));
    if (!jd) return jd.takeError();
    auto view = llvm::MemoryBuffer::getMemBuffer(llvm::StringRef((*obj)->data(), (*obj)->size()), inst.name, false);
    auto linked = [&]() -> llvm::Expected<llvm::orc::ExecutorAddr> {
      if (auto e = lljit->addObjectFile(*jd, std::move(view))) return std::move(e);
      return lljit->lookup(*jd, inst.entry_symbol);  // links, resolving every symbol
    }();
    if (!linked) {
      llvm::consumeError(lljit->getExecutionSession().removeJITDylib(*jd));
      return jitd::fail(errc::compile_error, fmt::format("cannot link code object {}: {}", inst.name,
                                                         llvm::toString(linked.takeError())));
    }
    const auto entry = linked->toPtr<ferry_entry_fn>();
    // The exported mobile symbols: weak, since hand-built modules may lack
    // them (a failing strong lookup would cost an error per link). Measured:
    // folding this into the entry lookup makes linking ~0.1 ms slower.
    std::vector<detail::jit_instance::symbol_address> found;
    if (!inst.exported.empty()) {
      llvm::orc::SymbolLookupSet names;
      for (const auto& name : inst.exported)
        names.add(lljit->mangleAndIntern(name), llvm::orc::SymbolLookupFlags::WeaklyReferencedSymbol);
      auto map = lljit->getExecutionSession().lookup(
          llvm::orc::makeJITDylibSearchOrder(&*jd, llvm::orc::JITDylibLookupFlags::MatchAllSymbols), std::move(names));
      if (map) {
        for (const auto& name : inst.exported)
          if (auto it = map->find(lljit->mangleAndIntern(name)); it != map->end())
            found.push_back({it->second.getAddress().toPtr<void*>(), name, tier});
      } else {
        llvm::consumeError(map.takeError());  // optional symbols: the code still runs
      }
    }
    std::lock_guard lock(inst.mu);
    reserved.bytes = nullptr;  // linked: the instance gives it back when it goes
    inst.code_bytes += size;
    inst.dylibs.push_back(&*jd);
    inst.symbols.insert(inst.symbols.end(), found.begin(), found.end());
    return entry;
  }

  result<std::shared_ptr<detail::jit_instance>> build(const object_id& id, std::shared_ptr<const code_variant> v,
                                                      const code_object& manifest) {
    std::array<std::uint8_t, 32> h{};
    crypto_generichash(h.data(), h.size(), v->bitcode.data(), v->bitcode.size(), nullptr, 0);
    if (h != v->bitcode_hash)
      return make_error(errc::corrupt, fmt::format("code object {}: {} bitcode does not match its hash",
                                                   manifest.name, v->triple));
    auto inst = std::make_shared<detail::jit_instance>();
    inst->engine = shared_from_this();
    inst->id = id;
    inst->name = manifest.name;
    inst->entry_symbol = manifest.entry_symbol;
    inst->exported = manifest.references;
    if (!manifest.symbol.empty()) inst->exported.push_back(manifest.symbol);
    const bool may_tier_up = cfg.first_tier == jit_tier::fast && cfg.hot_call_threshold > 0;
    if (may_tier_up) {
      inst->call.hot_at.store(cfg.hot_call_threshold);
      inst->call.hot_run_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(cfg.hot_run_time).count());
    }
    auto entry = link(*inst, *v, cfg.first_tier);
    if (!entry) return jitd::to_status(entry.takeError(), errc::compile_error, "compiling " + manifest.name);
    if (may_tier_up) inst->variant = std::move(v);
    inst->tiers_up = may_tier_up;
    inst->call.entry.store(*entry, std::memory_order_release);
    inst->tier.store(cfg.first_tier);
    ++n.live_code;
    return inst;
  }

  void finish(const object_id& id, result<std::shared_ptr<detail::jit_instance>> r) {
    std::vector<load_callback> waiting;
    {
      std::lock_guard lock(mu);
      waiting = std::move(pending[id]);
      pending.erase(id);
      if (r) resident[id] = *r;
    }
    if (!r) {
      n.failures += waiting.size();
      for (auto& cb : waiting) cb(r.error());
      return;
    }
    // Hand the last waiter our reference: once the callbacks return, this
    // thread holds none, so an unload right after frees the code at once.
    auto inst = std::move(*r);
    for (std::size_t i = 0; i < waiting.size(); ++i)
      waiting[i](jit_handles::make(i + 1 == waiting.size() ? std::move(inst) : inst));
  }

  void tier_up(const std::shared_ptr<detail::jit_instance>& inst) {
    // Only this job reads the bitcode, and only once: free it either way.
    const auto variant = std::move(inst->variant);
    auto entry = link(*inst, *variant, jit_tier::optimized);
    if (!entry) {
      // The fast tier keeps serving; the failure is counted, not fatal.
      auto why = jitd::to_status(entry.takeError(), errc::compile_error, "recompiling " + inst->name + " optimized");
      ++n.failures;
      return settle_tier_up(*inst, why);
    }
    inst->call.entry.store(*entry, std::memory_order_release);
    inst->tier.store(jit_tier::optimized);
    ++n.tier_ups;
    settle_tier_up(*inst, {});
  }

  // The tier-up ended: tell whoever waits for it (jit_function::optimize).
  static void settle_tier_up(detail::jit_instance& inst, const status& outcome) {
    std::vector<std::function<void(status)>> waiting;
    {
      std::lock_guard lock(inst.mu);
      inst.tier_up_outcome = outcome;
      waiting.swap(inst.optimized_waiters);
    }
    for (auto& done : waiting) done(outcome);
  }

  void shutdown() {
    if (workers) workers->shutdown();
    std::unordered_map<object_id, std::vector<load_callback>> orphans;
    std::unordered_map<object_id, std::shared_ptr<detail::jit_instance>> gone;
    {
      std::lock_guard lock(mu);
      orphans.swap(pending);
      gone.swap(resident);
    }
    for (auto& [id, cbs] : orphans)
      for (auto& cb : cbs) cb(make_error(errc::cancelled, "the JIT engine shut down before the load finished"));
  }
};

namespace detail {

void request_tier_up(jit_instance& inst) {
  inst.call.hot_at.store(UINT64_MAX, std::memory_order_relaxed);  // calls stop coming here
  if (inst.tier_up_requested.exchange(true)) return;
  // Weak: code unloaded (and no longer held) before the job runs is not
  // worth optimizing. The engine outlives its jobs (its destructor shuts
  // the workers down first), so the job may count on it either way.
  jit::impl* engine = inst.engine.get();
  ++engine->n.recompiling;
  if (!engine->submit([engine, weak = inst.weak_from_this()] {
        if (auto self = weak.lock()) {
          self->engine->tier_up(self);
          self->engine->cache->write_pending();
        }
        --engine->n.recompiling;
      })) {
    --engine->n.recompiling;
    jit::impl::settle_tier_up(inst, make_error(errc::cancelled, "the JIT engine is shutting down"));
  }
}

jit_instance::~jit_instance() {
  auto& es = engine->lljit->getExecutionSession();
  for (auto* jd : dylibs) llvm::consumeError(es.removeJITDylib(*jd));
  engine->linked_bytes -= code_bytes;
  --engine->n.live_code;
}

}  // namespace detail

// ---- jit_function ------------------------------------------------------------

jit_tier jit_function::tier() const noexcept { return p_->tier.load(); }

void jit_function::optimize(std::function<void(status)> done) const {
  detail::jit_instance& inst = *p_;
  if (inst.tier.load() == jit_tier::optimized) return done({});
  {
    std::unique_lock lock(inst.mu);
    if (inst.tier_up_outcome) {
      const status outcome = *inst.tier_up_outcome;
      lock.unlock();
      return done(outcome);
    }
    if (!inst.tiers_up)
      return lock.unlock(), done(make_error(errc::unsupported,
                                            fmt::format("{}: this node never recompiles code optimized "
                                                        "(hot_call_threshold 0)",
                                                        inst.name)));
    inst.optimized_waiters.push_back(std::move(done));
  }
  detail::request_tier_up(inst);
}

void* jit_function::lookup(std::string_view symbol) const {
  const jit_tier current = p_->tier.load();
  std::lock_guard lock(p_->mu);
  for (const auto& s : p_->symbols)
    if (s.tier == current && s.symbol == symbol) return s.at;
  return nullptr;
}

bool jit_function::symbol_at(const void* address, std::string& symbol) const {
  std::lock_guard lock(p_->mu);
  for (const auto& s : p_->symbols)
    if (s.at == address) {
      symbol.assign(s.symbol);
      return true;
    }
  return false;
}
const object_id& jit_function::id() const noexcept { return p_->id; }

// ---- jit ---------------------------------------------------------------------

namespace {

// Address space linked code is placed in, reserved a piece at a time
// (read-write until a segment is finalized; pages are touched only as code
// is written there). An object that fits in no free range gets a new
// reservation, its size rounded up to a multiple of this.
constexpr std::size_t kCodeReservationBytes = std::size_t{16} << 20;

llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>> make_lljit(const jit::impl& p) {
  std::map<std::string, void*> runtime = p.cfg.runtime_symbols;
  const bool any = p.cfg.any_process_symbol;
  llvm::StringSet<> process;
  for (const auto& s : p.cfg.allowed_process_symbols) process.insert(s);
  return llvm::orc::LLJITBuilder()
      .setJITTargetMachineBuilder(p.target.machine_builder())
      .setPlatformSetUp(llvm::orc::setUpInactivePlatform)
      // JITLink, as LLJIT picks for x86-64 and AArch64 ELF, but with linked
      // code placed in reserved memory that is reused once its code is
      // removed: LLJIT's default maps fresh pages for every object and
      // unmaps them on removal (a link of the chase's object: 120-190 us,
      // 2 fresh pages at ~15 us; from a reservation: 60-80 us, none).
      // docs/jit.md, "Where linked code lives".
      .setObjectLinkingLayerCreator(
          [](llvm::orc::ExecutionSession& es,
             const llvm::Triple&) -> llvm::Expected<std::unique_ptr<llvm::orc::ObjectLayer>> {
            auto memory = llvm::orc::MapperJITLinkMemoryManager::CreateWithMapper<llvm::orc::InProcessMemoryMapper>(
                kCodeReservationBytes);
            if (!memory) return memory.takeError();
            auto frames = llvm::orc::EPCEHFrameRegistrar::Create(es);
            if (!frames) return frames.takeError();
            auto layer = std::make_unique<llvm::orc::ObjectLinkingLayer>(es, std::move(*memory));
            layer->addPlugin(std::make_unique<llvm::orc::EHFrameRegistrationPlugin>(es, std::move(*frames)));
            return layer;
          })
      .setProcessSymbolsJITDylibSetup(
          [runtime, process, any](llvm::orc::LLJIT& j) -> llvm::Expected<llvm::orc::JITDylibSP> {
            auto& jd = j.getExecutionSession().createBareJITDylib("<ferry runtime + allowed process symbols>");
            llvm::orc::SymbolMap api;
            for (const auto& [name, addr] : runtime)
              api[j.mangleAndIntern(name)] = {llvm::orc::ExecutorAddr::fromPtr(addr),
                                              llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable};
            if (!api.empty())
              if (auto e = jd.define(llvm::orc::absoluteSymbols(std::move(api)))) return std::move(e);
            // Only allow-listed names ever reach dlsym: the default LLJIT
            // would hand mobile code system(), environ or dlopen.
            const char prefix = j.getDataLayout().getGlobalPrefix();
            auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                prefix, [process, prefix, any](const llvm::orc::SymbolStringPtr& s) {
                  if (any) return true;
                  llvm::StringRef name = *s;
                  if (prefix && name.starts_with(llvm::StringRef(&prefix, 1))) name = name.drop_front();
                  return process.contains(name);
                });
            if (!gen) return gen.takeError();
            jd.addGenerator(std::move(*gen));
            return llvm::orc::JITDylibSP(&jd);
          })
      .create();
}

}  // namespace

result<std::unique_ptr<jit>> jit::create(jit_config config) {
  if (config.threads == 0) return make_error(errc::invalid_argument, "jit_config::threads must be at least 1");
  for (const auto& [name, addr] : config.runtime_symbols)
    if (!addr || name.empty() || name.find(',') != std::string::npos)
      return make_error(errc::invalid_argument, fmt::format("runtime symbol '{}' needs a name and an address", name));
  if (config.trust == jit_trust::untrusted && (config.any_process_symbol || !config.uniform_entry))
    return make_error(errc::invalid_argument,
                      "jit_config::any_process_symbol and uniform_entry = false are for trusted code only");
  auto target = jitd::node_target::resolve(config.target);
  if (!target) return jitd::to_status(target.takeError(), errc::unsupported, "resolving the JIT target");
  auto p = std::make_shared<impl>(std::move(*target));
  p->cfg = std::move(config);
  // Metered code calls the fuel hook (<ferry/ferry.h>), wherever the engine runs.
  if (p->cfg.meter) p->cfg.runtime_symbols.try_emplace("ferry_fuel", reinterpret_cast<void*>(&ferry_fuel));
  // So does bounds-checked code (ferry_bounds at a read, ferry_bounds_write
  // at a write, ferry_bounds_enter at its entry, ferry_bad_callee before a
  // call through a pointer that is none of its functions,
  // ferry_bounds_object at an access into one of its own objects).
  if (p->cfg.bounds_checks) {
    p->cfg.runtime_symbols.try_emplace("ferry_bounds", reinterpret_cast<void*>(&ferry_bounds));
    p->cfg.runtime_symbols.try_emplace("ferry_bounds_write", reinterpret_cast<void*>(&ferry_bounds_write));
    p->cfg.runtime_symbols.try_emplace("ferry_bounds_enter", reinterpret_cast<void*>(&ferry_bounds_enter));
    p->cfg.runtime_symbols.try_emplace("ferry_bad_callee", reinterpret_cast<void*>(&ferry_bad_callee));
    p->cfg.runtime_symbols.try_emplace("ferry_bounds_object", reinterpret_cast<void*>(&ferry_bounds_object));
    // Checked functions carry stack canaries (contain.hpp): a changed one
    // ends the call. Their guard is ferry's, on every target.
    p->cfg.runtime_symbols.try_emplace(jitd::kStackSmashedSymbol, reinterpret_cast<void*>(&ferry_stack_smashed));
    p->cfg.runtime_symbols.try_emplace(jitd::kStackGuardSymbol, jitd::stack_guard_address());
  }
  // What mobile code may name: the runtime's symbols but the canaries' guard
  // (contain_module adds its reads after the policy check).
  for (const auto& [name, addr] : p->cfg.runtime_symbols)
    if (name != jitd::kStackGuardSymbol) p->allowed.insert(name);
  for (const auto& s : p->cfg.allowed_process_symbols) p->allowed.insert(s);
  if (p->cfg.disk_cache) p->cache_path = p->cfg.cache_dir.empty() ? jitd::default_cache_dir() : p->cfg.cache_dir;
  p->cache = std::make_unique<jitd::object_cache>(p->cache_path, p->cfg.memory_cache_bytes);

  if (p->cfg.trust == jit_trust::untrusted) {
    auto argv = p->cfg.check_command;
    if (argv.empty()) {
      const std::string helper = jitd::find_check_helper();
      if (helper.empty())
        return make_error(errc::not_found,
                          "untrusted mode needs the ferry-jit-check helper: install it next to libferry, set "
                          "FERRY_JIT_CHECK, or set jit_config::check_command");
      argv.push_back(helper);
    }
    if (::access(argv[0].c_str(), X_OK) != 0)
      return make_error(errc::not_found, fmt::format("sandbox helper '{}' is not an executable file", argv[0]));
    std::string allow;
    for (const auto& s : p->allowed) allow += (allow.empty() ? "" : ",") + s.getKey().str();
    const auto& t = p->target.description();
    for (const std::string& a : {std::string("--triple"), t.triple, std::string("--cpu"), t.cpu,
                                 std::string("--features"), t.features, std::string("--allow"), allow,
                                 std::string("--max-data"), std::to_string(p->cfg.max_data_bytes),
                                 std::string("--meter"), std::string(p->cfg.meter ? "1" : "0"),
                                 std::string("--bounds"), std::string(p->cfg.bounds_checks ? "1" : "0")})
      argv.push_back(a);
    p->sandbox = std::make_unique<jitd::sandbox>(std::move(argv), p->cfg.check_timeout, p->cfg.check_memory_bytes);
  }

  auto lljit = make_lljit(*p);
  if (!lljit) return jitd::to_status(lljit.takeError(), errc::unsupported, "creating the LLJIT");
  p->lljit = std::move(*lljit);
  p->workers = std::make_unique<core::thread_pool_dispatcher>("ferry-jit", p->cfg.threads);
  // The sandboxed helper compiles in its own process: nothing to warm here.
  if (!p->sandbox) (void)p->submit([p = p.get()] { p->warm_up(); });
  return std::unique_ptr<jit>(new jit(std::move(p)));
}

jit::jit(std::shared_ptr<impl> p) : p_(std::move(p)) {}

jit::~jit() { p_->shutdown(); }

void jit::load(const code_object& code, load_callback done) {
  ++p_->n.loads;
  const object_id id = code.id();
  jit_function ready;
  {
    std::lock_guard lock(p_->mu);
    if (auto it = p_->resident.find(id); it != p_->resident.end()) {
      ready = jit_handles::make(it->second);
    } else {
      auto [pit, fresh] = p_->pending.try_emplace(id);
      pit->second.push_back(std::move(done));
      if (!fresh) return void(++p_->n.coalesced);
    }
  }
  if (ready) {
    ++p_->n.resident_hits;
    return done(std::move(ready));  // outside the lock: done may call back into the engine
  }
  // Everything else, variant selection included (it builds LLVM subtarget
  // tables), runs on a worker. The job owns a copy: the caller's code object
  // may be gone by then.
  auto copy = std::make_shared<const code_object>(code);
  const bool queued = p_->submit([p = p_.get(), id, copy = std::move(copy)] {
    if (!p->cfg.trusted_signers.empty())
      if (auto s = copy->verify_signature(p->cfg.trusted_signers); !s) return p->finish(id, s);
    auto chosen = p->target.select(*copy);
    if (!chosen)
      return p->finish(id, jitd::to_status(chosen.takeError(), errc::no_matching_variant, "selecting a variant"));
    p->finish(id, p->build(id, std::shared_ptr<const code_variant>(copy, *chosen), *copy));
    // finish() woke the thread the answer went to (a node's network thread).
    // With every core busy it would wait for this worker's time slice to run
    // out (up to 1.4 ms on this machine's kernel) while the worker writes
    // the disk cache: let it run first (docs/jit.md, "The disk cache is
    // written after the answer").
    std::this_thread::yield();
    p->cache->write_pending();  // the callers have their answer
  });
  if (!queued) p_->finish(id, make_error(errc::cancelled, "the JIT engine is shutting down"));
}

std::future<result<jit_function>> jit::load(const code_object& code) {
  auto promise = std::make_shared<std::promise<result<jit_function>>>();
  auto future = promise->get_future();
  load(code, [promise](result<jit_function> r) { promise->set_value(std::move(r)); });
  return future;
}

status jit::unload(const object_id& id) {
  std::shared_ptr<detail::jit_instance> dropped;  // released after the lock: may free code
  {
    std::lock_guard lock(p_->mu);
    const auto it = p_->resident.find(id);
    if (it == p_->resident.end())
      return make_error(errc::not_found, fmt::format("code object {} is not loaded", id.to_string()));
    dropped = std::move(it->second);
    p_->resident.erase(it);
  }
  return {};
}

bool jit::is_loaded(const object_id& id) const {
  std::lock_guard lock(p_->mu);
  return p_->resident.count(id) != 0;
}

jit_stats jit::stats() const {
  const auto& n = p_->n;
  return {n.loads, n.compiles, n.resident_hits, n.memory_hits, n.disk_hits, n.coalesced, n.tier_ups,
          n.sandbox_checks, n.sandbox_failures, n.live_code, n.failures, n.warmed_up, n.recompiling,
          p_->target.judged_variants()};
}

const jit_config& jit::config() const noexcept { return p_->cfg; }
const jit_target& jit::target() const noexcept { return p_->target.description(); }
const std::filesystem::path& jit::cache_dir() const noexcept { return p_->cache_path; }

}  // namespace ferry
