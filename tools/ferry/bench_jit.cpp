// `ferry bench jit [--json]`: what loading and calling JIT-compiled code
// costs. Every case prints a baseline measured in the same run, ferry's
// figure and the ratio:
//   cold load           baseline: a bare LLJIT (parse + addIRModule + lookup,
//                       same codegen level and IR pipeline, no checks, no
//                       cache, no policy, no object file round trip)
//   resident hit        baseline: a bare LLJIT lookup of a linked symbol
//   memory relink, disk hit after restart
//                       baseline: the bare-LLJIT cold load (fast codegen)
//   untrusted cold load baseline: ferry's trusted cold load
//   per call            baseline: the same kernel compiled natively into this
//                       executable, called through a function pointer
//   per call, metered   baseline: the same tier compiled without fuel
//                       accounting (jit_config::meter = false)
//   per call, bounds-checked
//                       baseline: the same tier compiled without bounds
//                       checks (jit_config::bounds_checks = false), both
//                       run in a call context (exec::run_mobile)
// Targets (DESIGN.md): disk hit <= 0.3 ms, per call within 1.5x native.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>

#include "common/child_process.hpp"
#include "exec/call_context.hpp"  // runtime/: entering mobile code as a node does
#include "jit/jit.hpp"

#include "commands.hpp"
#include "common/bench_report.hpp"
#include "compile.hpp"  // jit/: the optimized tier's IR pipeline, for a like-for-like baseline

extern "C" {
extern const unsigned char ferry_bench_bc_small[];
extern const unsigned long ferry_bench_bc_small_size;
extern const unsigned char ferry_bench_bc_large[];
extern const unsigned long ferry_bench_bc_large_size;
extern const unsigned char ferry_bench_bc_chase[];
extern const unsigned long ferry_bench_bc_chase_size;
std::int32_t ferry_bench_small_entry(ferry_context*, const void*, void*);
std::int32_t ferry_bench_large_entry(ferry_context*, const void*, void*);
std::int32_t ferry_bench_chase_entry(ferry_context*, const void*, void*);
}

namespace ferry::cli {
namespace {

using clock_type = std::chrono::steady_clock;

struct kernel {
  const char* name;  // "small" / "large"
  const unsigned char* bitcode;
  unsigned long size;
  const char* entry;
  ferry_entry_fn native;
  std::uint64_t arg1;  // second argument: rounds for the large kernel
  int call_iterations;
};

using bench::median;
using bench::row;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

code_object code_of(const kernel& k) {
  code_object co;
  co.name = fmt::format("bench::{}", k.name);
  co.symbol = co.name;
  co.entry_symbol = k.entry;
  co.args_size = 16;
  co.result_size = 8;
  // Labelled as the Clang plugin labels the code it builds for this host,
  // as the code objects nodes receive are (and as the engine's warm-up
  // expects them: its verdict on that variant is made).
  code_variant v = jitd::default_variant(llvm::Triple(llvm::sys::getProcessTriple()));
  v.bitcode.assign(k.bitcode, k.bitcode + k.size);
  co.variants.push_back(std::move(v));
  co.seal();
  return co;
}

jit_config config_for(jit_tier tier, bool disk, const std::filesystem::path& dir) {
  jit_config c;
  c.first_tier = tier;
  c.hot_call_threshold = 0;
  c.disk_cache = disk;
  c.cache_dir = dir;
  return c;
}

// An engine as a node has it once started: its start-up warm-up (LLVM's
// one-time set-up, docs/jit.md) has run, so the figures that follow are
// the load's own and not the warm-up's, which a node pays as it starts.
// Sandboxed engines warm nothing in this process.
std::unique_ptr<jit> engine_or_die(const jit_config& c) {
  auto e = jit::create(c);
  if (!e) throw ferry::error(e.error());
  if (c.trust == jit_trust::untrusted) return std::move(*e);
  const auto deadline = clock_type::now() + std::chrono::seconds(5);
  while ((*e)->stats().warmed_up == 0) {
    if (clock_type::now() > deadline)
      throw ferry::error(make_error(errc::timeout, "a new JIT engine did not finish its start-up warm-up within 5 s"));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return std::move(*e);
}

jit_function load_or_die(jit& engine, const code_object& co) {
  auto r = engine.load(co).get();
  if (!r) throw ferry::error(r.error());
  return *r;
}

// Bare LLJIT: parse + addIRModule + lookup, with the same IR pipeline as
// ferry's tier (jitd::optimize_module) but no checks and no cache. Returns ms.
double bare_orc_load(const kernel& k, jit_tier tier) {
  auto jtmb = llvm::cantFail(llvm::orc::JITTargetMachineBuilder::detectHost());
  jtmb.setCodeGenOptLevel(tier == jit_tier::optimized ? llvm::CodeGenOptLevel::Default : llvm::CodeGenOptLevel::None);
  auto tm = llvm::cantFail(jtmb.createTargetMachine());
  auto j = llvm::cantFail(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create());
  if (tier == jit_tier::optimized)
    j->getIRTransformLayer().setTransform(
        [&tm](llvm::orc::ThreadSafeModule m, llvm::orc::MaterializationResponsibility&) {
          m.withModuleDo([&](llvm::Module& mod) { jitd::optimize_module(mod, *tm); });
          return llvm::Expected<llvm::orc::ThreadSafeModule>(std::move(m));
        });
  const auto t0 = clock_type::now();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  const llvm::MemoryBufferRef ref(llvm::StringRef(reinterpret_cast<const char*>(k.bitcode), k.size), k.name);
  auto m = llvm::cantFail(llvm::parseBitcodeFile(ref, *ctx));
  llvm::cantFail(j->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx))));
  llvm::cantFail(j->lookup(k.entry));
  return ms_since(t0);
}

double ferry_cold_load(const kernel& k, jit_tier tier) {
  auto engine = engine_or_die(config_for(tier, false, {}));
  const auto t0 = clock_type::now();
  load_or_die(*engine, code_of(k));
  return ms_since(t0);
}

// ns per call of `f` with varying first argument.
template <class F>
double ns_per_call(F&& f, int iterations) {
  std::vector<double> runs;
  for (int rep = 0; rep < 5; ++rep) {
    std::uint64_t sink = 0;
    const auto t0 = clock_type::now();
    for (int i = 0; i < iterations; ++i) sink += f(static_cast<std::uint64_t>(i));
    runs.push_back(ms_since(t0) * 1e6 / iterations);
    if (sink == 42) std::puts("");  // keep the calls observable
  }
  return *std::min_element(runs.begin(), runs.end());
}

std::vector<row> run(int samples) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  const kernel kernels[] = {
      {"small", ferry_bench_bc_small, ferry_bench_bc_small_size, "ferry_bench_small_entry", &ferry_bench_small_entry,
       3, 2'000'000},
      {"large", ferry_bench_bc_large, ferry_bench_bc_large_size, "ferry_bench_large_entry", &ferry_bench_large_entry,
       2, 20'000},
      {"chase", ferry_bench_bc_chase, ferry_bench_bc_chase_size, "ferry_bench_chase_entry", &ferry_bench_chase_entry,
       4096, 2'000},
  };
  std::vector<row> rows;
  const auto repeat = [&](auto&& f) {
    std::vector<double> v;
    for (int i = 0; i < samples; ++i) v.push_back(f());
    return median(std::move(v));
  };
  // The disk cache's directory (a scratch directory with no servers),
  // removed however the run ends; std::system_error if it cannot be made.
  const ferry::bench::scratch_servers scratch("ferry-bench-jit");
  const std::filesystem::path& dir = scratch.dir();

  for (const auto& k : kernels) {
    const auto co = code_of(k);
    const double bare_fast = repeat([&] { return bare_orc_load(k, jit_tier::fast); });
    rows.push_back({fmt::format("{} cold load, fast codegen", k.name), bare_fast,
                    repeat([&] { return ferry_cold_load(k, jit_tier::fast); }), "ms"});
    rows.push_back({fmt::format("{} cold load, optimized", k.name),
                    repeat([&] { return bare_orc_load(k, jit_tier::optimized); }),
                    repeat([&] { return ferry_cold_load(k, jit_tier::optimized); }), "ms"});

    auto engine = engine_or_die(config_for(jit_tier::fast, true, dir));
    auto fn = load_or_die(*engine, co);
    {
      auto j = llvm::cantFail(llvm::orc::LLJITBuilder().create());
      auto ctx = std::make_unique<llvm::LLVMContext>();
      const llvm::MemoryBufferRef ref(llvm::StringRef(reinterpret_cast<const char*>(k.bitcode), k.size), k.name);
      llvm::cantFail(j->addIRModule(
          llvm::orc::ThreadSafeModule(llvm::cantFail(llvm::parseBitcodeFile(ref, *ctx)), std::move(ctx))));
      llvm::cantFail(j->lookup(k.entry));
      const double base = repeat([&] {
        const auto t0 = clock_type::now();
        llvm::cantFail(j->lookup(k.entry));
        return ms_since(t0);
      });
      const double hit = repeat([&] {
        const auto t0 = clock_type::now();
        load_or_die(*engine, co);
        return ms_since(t0);
      });
      rows.push_back({fmt::format("{} resident hit (load of loaded code)", k.name), base, hit, "ms"});
    }
    fn = {};
    rows.push_back({fmt::format("{} memory cache relink (after unload)", k.name), bare_fast, repeat([&] {
                      (void)engine->unload(co.id());
                      const auto t0 = clock_type::now();
                      load_or_die(*engine, co);
                      return ms_since(t0);
                    }),
                    "ms"});
    engine.reset();
    rows.push_back({fmt::format("{} disk cache hit after restart", k.name), bare_fast, repeat([&] {
                      auto restarted = engine_or_die(config_for(jit_tier::fast, true, dir));
                      const auto t0 = clock_type::now();
                      load_or_die(*restarted, co);
                      return ms_since(t0);
                    }),
                    "ms"});

    auto cfg = config_for(jit_tier::optimized, false, {});
    auto opt = engine_or_die(cfg);
    auto jitted = load_or_die(*opt, co);
    const std::uint64_t arg1 = k.arg1;
    const ferry_entry_fn native = k.native;
    volatile ferry_entry_fn indirect = native;  // a real indirect call, as through a table
    const auto per_call = [&](auto&& fn) {
      return ns_per_call(
          [&](std::uint64_t i) {
            const std::uint64_t args[2] = {i, arg1};
            std::uint64_t out = 0;
            fn(nullptr, args, &out);
            return out;
          },
          k.call_iterations);
    };
    const double base = per_call(indirect);
    const double ferry_ns = per_call(jitted);
    rows.push_back({fmt::format("{} per call (optimized tier vs native)", k.name), base, ferry_ns, "ns"});
    // Fuel accounting (docs/security.md): the same tier compiled without it.
    cfg.meter = false;
    auto unmetered = engine_or_die(cfg);
    auto plain = load_or_die(*unmetered, co);
    rows.push_back({fmt::format("{} per call, metered vs unmetered", k.name), per_call(plain), per_call(jitted), "ns"});
    // Bounds checks (docs/security.md): the same tier without them (the
    // trusted policy), both entered the way a node enters mobile code, in a
    // call whose regions are its argument and result blocks.
    cfg.meter = true;
    cfg.bounds_checks = false;
    auto unchecked_engine = engine_or_die(cfg);
    auto unchecked = load_or_die(*unchecked_engine, co);
    const auto in_call = [&](const jit_function& fn) {
      return ns_per_call(
          [&](std::uint64_t i) {
            const std::uint64_t args[2] = {i, arg1};
            std::uint64_t out = 0;
            exec::call_context cx;
            if (exec::run_mobile(cx, fn, args, sizeof args, &out, sizeof out) != 0) throw ferry::error(cx.failure);
            return out;
          },
          k.call_iterations);
    };
    rows.push_back({fmt::format("{} per call, bounds-checked vs unchecked", k.name), in_call(unchecked),
                    in_call(jitted), "ns"});
    // The fast tier's checks are calls (jit/contain.hpp, inline_checks):
    // what its code costs to run until the tier-up.
    auto fast_engine = engine_or_die(config_for(jit_tier::fast, false, {}));
    auto fast = load_or_die(*fast_engine, co);
    rows.push_back({fmt::format("{} per call, fast tier vs optimized (both checked)", k.name), in_call(jitted),
                    in_call(fast), "ns"});
  }

  // Untrusted mode: the helper's cost, first load (helper start) and steady.
  const auto& small = kernels[0];
  const auto& large = kernels[1];
  const double trusted = repeat([&] { return ferry_cold_load(small, jit_tier::fast); });
  auto untrusted_cfg = config_for(jit_tier::fast, false, {});
  untrusted_cfg.trust = jit_trust::untrusted;
  rows.push_back({"small cold load, untrusted, helper start", trusted, repeat([&] {
                    auto e = engine_or_die(untrusted_cfg);
                    const auto t0 = clock_type::now();
                    load_or_die(*e, code_of(small));
                    return ms_since(t0);
                  }),
                  "ms"});
  rows.push_back({"small cold load, untrusted, helper running", trusted, repeat([&] {
                    auto e = engine_or_die(untrusted_cfg);
                    load_or_die(*e, code_of(large));  // starts the helper
                    const auto t0 = clock_type::now();
                    load_or_die(*e, code_of(small));
                    return ms_since(t0);
                  }),
                  "ms"});
  return rows;
}

// "met" or "missed" for the rows named "<kernel> <what>", each kernel's
// figure in brackets: "missed (small 0.35 ms, large 0.46 ms)".
template <class Meets, class Figure>
std::string verdict(const std::vector<row>& rows, std::string_view what, Meets meets, Figure figure) {
  std::vector<std::string> met, missed;
  for (const row& r : rows)
    if (r.name.ends_with(what))
      (meets(r) ? met : missed).push_back(fmt::format("{} {}", r.name.substr(0, r.name.find(' ')), figure(r)));
  const auto list = [](const std::vector<std::string>& v) { return fmt::format("{}", fmt::join(v, ", ")); };
  if (missed.empty()) return fmt::format("met: {}", list(met));
  if (met.empty()) return fmt::format("missed: {}", list(missed));
  return fmt::format("met: {}; missed: {}", list(met), list(missed));
}

}  // namespace

void add_bench_jit_command(CLI::App& app) {
  auto* cmd = bench_group(app).add_subcommand("jit", "JIT: cold load, caches, per-call overhead vs native");
  auto json = std::make_shared<bool>(false);
  auto samples = std::make_shared<int>(15);
  cmd->add_flag("--json", *json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  cmd->add_option("--samples", *samples, "Repetitions per load case (median reported)")->check(CLI::Range(1, 1000));
  cmd->callback([json, samples] {
    std::vector<row> rows;
    const auto failed = [](const char* why) {
      fmt::print(stderr, "ferry: bench jit: {}\n", why);
      set_exit_code(1);
    };
    try {
      rows = run(*samples);
    } catch (const ferry::error& e) {
      return failed(e.what());
    } catch (const std::system_error& e) {  // no scratch directory (TMPDIR missing or not writable)
      return failed(e.what());
    }
    bench::print_rows(rows, *json, "baseline", bench::parameters().add("samples", *samples));
    if (*json) return;
    fmt::print("targets: disk cache hit <= 0.3 ms ({}); per call <= 1.5x native ({})\n",
               verdict(rows, "disk cache hit after restart", [](const row& r) { return r.ferry <= 0.3; },
                       [](const row& r) { return fmt::format("{:.2f} ms", r.ferry); }),
               verdict(rows, "per call (optimized tier vs native)",
                       [](const row& r) { return r.ferry <= 1.5 * r.baseline; },
                       [](const row& r) { return fmt::format("{:.2f}x", r.ferry / r.baseline); }));
  });
}

}  // namespace ferry::cli
