// Variant choice for a device's CPU (docs/devices.md): an aarch64 node named
// by its CPU (`ferry node --cpu cortex-a72`, what an emulated BlueField-2 DPU
// runs with) has exactly that CPU's extensions, so SVE code is never chosen
// for it, and a code object with nothing it can run is refused naming what
// was missing. Selection only: nothing is compiled for the foreign target.
#include <chrono>
#include <cstring>
#include <thread>

#include <doctest/doctest.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "code_objects.hpp"
#include "compile.hpp"
#include "contain.hpp"
#include "error.hpp"
#include "target.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace ferry::test;

namespace {

// The runtime's hooks, which contained code calls: what these compiles allow.
const llvm::StringSet<>& hook_symbols() {
  static const llvm::StringSet<> hooks{"ferry_fuel", "ferry_bounds", "ferry_bounds_write", "ferry_bounds_enter",
                                       "__stack_chk_fail"};
  return hooks;
}

jitd::node_target aarch64_node(const char* cpu) {
  auto t = jitd::node_target::resolve({"aarch64-unknown-linux-gnu", cpu, ""});
  if (!t) FAIL(llvm::toString(t.takeError()));
  return std::move(*t);
}

code_variant sve_variant(std::string cpu, std::string features) {
  auto v = aarch64_variant("arith");
  v.cpu = std::move(cpu);
  v.features = std::move(features);
  return v;
}

// Embedded test bitcode `module`, parsed into `ctx`.
std::unique_ptr<llvm::Module> parse(std::string_view module, llvm::LLVMContext& ctx) {
  const auto bc = bitcode(module);
  auto m = llvm::parseBitcodeFile(
      llvm::MemoryBufferRef(llvm::StringRef(reinterpret_cast<const char*>(bc.data()), bc.size()), module), ctx);
  if (!m) FAIL(llvm::toString(m.takeError()));
  return std::move(*m);
}

// The ELF machine of a relocatable object (EM_X86_64 62, EM_AARCH64 183).
std::uint16_t elf_machine(llvm::StringRef object) {
  std::uint16_t machine = 0;
  if (object.size() >= 20) std::memcpy(&machine, object.data() + 18, 2);
  return machine;
}

}  // namespace

TEST_CASE("a cortex-a72 node has exactly that CPU's extensions: neon and crc, no SVE") {
  const auto node = aarch64_node("cortex-a72");
  const auto& f = node.description().features;
  CHECK(f.find("+neon") != std::string::npos);
  CHECK(f.find("+crc") != std::string::npos);
  CHECK(f.find("-sve") != std::string::npos);
  CHECK(f.find("+sve") == std::string::npos);
}

TEST_CASE("a cortex-a72 node never picks an SVE variant, whichever way it asks for SVE") {
  const auto node = aarch64_node("cortex-a72");
  const auto plain = aarch64_variant("arith");
  for (const auto& sve : {sve_variant("a64fx", ""), sve_variant("generic", "+sve"), sve_variant("neoverse-v1", "")}) {
    CAPTURE(sve.cpu);
    CAPTURE(sve.features);
    // SVE first: more specialised, and first in the list; still not chosen.
    const auto both = make_code("test::sve_or_not", "ferry_test_mix_entry", 16, 8, {sve, plain});
    auto chosen = node.select(both);
    REQUIRE(chosen);
    CHECK((*chosen)->cpu == "generic");
    CHECK((*chosen)->features == plain.features);
    const auto sve_only = make_code("test::sve_only", "ferry_test_mix_entry", 16, 8, {sve});
    auto none = node.select(sve_only);
    REQUIRE(!none);
    const status s = jitd::to_status(none.takeError(), errc::internal, "select");
    CHECK(s.code() == errc::no_matching_variant);
    CHECK(s.message().find("sve") != std::string::npos);     // what was missing
    CHECK(s.message().find("cortex-a72") != std::string::npos);  // on which CPU
    MESSAGE(s.message());
  }
}

TEST_CASE("an a64fx node takes the SVE variant over the plain one") {
  const auto node = aarch64_node("a64fx");
  const auto code = make_code("test::sve_or_not", "ferry_test_mix_entry", 16, 8,
                               {aarch64_variant("arith"), sve_variant("generic", "+neon,+sve")});
  auto chosen = node.select(code);  // points into `code`: keep it alive
  REQUIRE(chosen);
  CHECK((*chosen)->features == "+neon,+sve");
}

TEST_CASE("an unknown CPU is refused when the node is set up, not at the first call") {
  auto t = jitd::node_target::resolve({"aarch64-unknown-linux-gnu", "cortex-a9000", ""});
  REQUIRE(!t);
  const status s = jitd::to_status(t.takeError(), errc::internal, "resolve");
  CHECK(s.code() == errc::unsupported);
  CHECK(s.message().find("cortex-a9000") != std::string::npos);
}

// The engine compiles a built-in module on a worker as it starts, so the
// first mobile call does not pay for LLVM's one-time set-up; its failure
// would be silent there (the first real compile reports its own), so it is
// checked here, with and without containment, at both tiers.
TEST_CASE("warm-up: the built-in module passes the policy check, containment and code generation") {
  auto host = jitd::node_target::resolve({});
  REQUIRE(host);
  const llvm::StringSet<>& allowed = hook_symbols();
  for (const bool contained : {true, false})
    for (const jit_tier tier : {jit_tier::fast, jit_tier::optimized}) {
      CAPTURE(contained);
      jitd::compile_options o;
      o.tier = tier;
      o.allowed = &allowed;
      o.target = &*host;
      o.meter = o.bounds = contained;
      auto object = jitd::warm_up(o);
      std::string why;
      if (!object) why = llvm::toString(object.takeError());
      REQUIRE_MESSAGE(why.empty(), why);
      const auto bytes = (*object)->getBuffer();
      CHECK(bytes.starts_with("\x7f" "ELF"));  // a relocatable object the engine can link
      CHECK(bytes.contains(jitd::kWarmUpEntry));
    }
}

// The engine also links the warm-up object (the linker has one-time set-up
// of its own), judges the plugin's default variant (test_jit_plugin checks
// that it is the plugin's) and counts a warm-up that went all the way.
TEST_CASE("warm-up: a new engine compiles and links the built-in module on a worker") {
  temp_dir dir;
  for (const bool contained : {false, true}) {
    CAPTURE(contained);
    auto cfg = test_config(dir.path());
    cfg.bounds_checks = cfg.meter = contained;
    auto engine = REQUIRE_OK(jit::create(cfg));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (engine->stats().warmed_up == 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(engine->stats().warmed_up == 1);
    CHECK(engine->stats().compiles == 0);  // not a load: the counters of real code stay as they were
    CHECK(engine->stats().variants_judged == 1);
  }
}

// warm_up() builds the subtarget most code objects ask for, from a table of
// what clang 19 writes on code by default: if the build's clang writes
// something else, a node's first compile builds its own subtarget (about
// 1 ms) and this test says which attribute moved.
TEST_CASE("warm-up: its subtarget attributes are what the build's clang gives code by default") {
  struct source {
    const char* module;
    const char* triple;
  };
  for (const source s :
       {source{"arith", "x86_64-unknown-linux-gnu"}, source{"arith_aarch64", "aarch64-unknown-linux-gnu"}}) {
    CAPTURE(s.module);
    llvm::LLVMContext ctx;
    const auto m = parse(s.module, ctx);
    const auto defaults = jitd::default_subtarget_attributes(llvm::Triple(s.triple));
    CHECK(!defaults.empty());
    int functions = 0;
    for (const llvm::Function& f : *m) {
      if (f.isDeclaration()) continue;
      ++functions;
      for (const char* name : jitd::kSubtargetAttributes) {
        CAPTURE(name);
        std::string expected;
        for (const auto& [n, v] : defaults)
          if (n == name) expected = v;
        CHECK(f.getFnAttribute(name).getValueAsString().str() == expected);
      }
    }
    CHECK(functions > 0);
  }
}

// compile_bitcode() keeps a target machine per thread, target and tier:
// compiles for two targets and both tiers, interleaved, each get code for
// their own target.
TEST_CASE("kept target machines: compiles for another target or tier in between get their own machine") {
  auto host = jitd::node_target::resolve({});
  REQUIRE(host);
  const auto a72 = aarch64_node("cortex-a72");
  struct step {
    const jitd::node_target* target;
    const char* module;
    jit_tier tier;
    std::uint16_t machine;
  };
  const step steps[] = {{&*host, "arith", jit_tier::fast, 62},        {&a72, "arith_aarch64", jit_tier::fast, 183},
                        {&*host, "arith", jit_tier::optimized, 62},   {&*host, "arith", jit_tier::fast, 62},
                        {&a72, "arith_aarch64", jit_tier::optimized, 183}, {&a72, "arith_aarch64", jit_tier::fast, 183}};
  for (const step& s : steps) {
    CAPTURE(s.module);
    CAPTURE(static_cast<int>(s.tier));
    jitd::compile_options o;
    o.entry_symbol = "ferry_test_mix_entry";
    o.tier = s.tier;
    o.target = s.target;
    o.any_symbol = true;
    auto object = jitd::compile_bitcode(bitcode(s.module), o);
    std::string why;
    if (!object) why = llvm::toString(object.takeError());
    REQUIRE_MESSAGE(why.empty(), why);
    CHECK(elf_machine((*object)->getBuffer()) == s.machine);
    CHECK(jitd::kept_subtargets(*s.target, s.tier) >= 1);
  }
}

// The subtargets a kept machine builds come from the bitcode's attributes,
// so a stream of code objects that each ask for another feature set must
// not grow it without bound: past kMaxKeptSubtargets the machine is made
// afresh, and every compile still succeeds.
TEST_CASE("kept target machines: code objects asking for ever new subtargets do not grow a machine without bound") {
  auto host = jitd::node_target::resolve({});
  REQUIRE(host);
  // Features every x86-64 CPU has: 40 of their 2^6 combinations.
  const char* features[] = {"+sse2", "+cx8", "+cmov", "+fxsr", "+mmx", "+x87"};
  std::size_t most = 0;
  for (unsigned mask = 0; mask < 40; ++mask) {
    llvm::LLVMContext ctx;
    const auto m = parse("arith", ctx);
    std::string set = "+sse2";
    for (unsigned bit = 0; bit < 6; ++bit)
      if (mask & (1u << bit)) set += std::string(",") + features[bit];
    for (llvm::Function& f : *m)
      if (!f.isDeclaration()) f.addFnAttr("target-features", set);
    llvm::SmallVector<char, 0> rewritten;
    {
      llvm::raw_svector_ostream out(rewritten);
      llvm::WriteBitcodeToFile(*m, out);
    }
    jitd::compile_options o;
    o.entry_symbol = "ferry_test_mix_entry";
    o.target = &*host;
    o.any_symbol = true;
    auto object = jitd::compile_bitcode(
        std::span(reinterpret_cast<const std::uint8_t*>(rewritten.data()), rewritten.size()), o);
    std::string why;
    if (!object) why = llvm::toString(object.takeError());
    REQUIRE_MESSAGE(why.empty(), why);
    most = std::max(most, jitd::kept_subtargets(*host, jit_tier::fast));
  }
  CHECK(most == jitd::kMaxKeptSubtargets);  // it filled up, and went no further
}

// Containment's stack canaries read ferry's guard with a plain load, which
// the fast instruction selector emits: LLVM's own canary on x86-64 Linux is
// a load through %fs, which it cannot, and sent each frame's entry and
// return blocks through SelectionDAG (about 0.3 ms of a first call's
// compile). A module with a local array gets a canary and keeps the canary
// off that slow path.
TEST_CASE("fast tier: contained code's stack canaries stay on the fast instruction selector") {
  auto host = jitd::node_target::resolve({});
  REQUIRE(host);
  const llvm::StringSet<>& allowed = hook_symbols();
  jitd::compile_options o;
  o.entry_symbol = "ferry_test_hostile_entry";
  o.tier = jit_tier::fast;
  o.target = &*host;
  o.allowed = &allowed;
  std::vector<std::string> misses;
  o.fast_isel_misses = &misses;
  auto object = jitd::compile_bitcode(bitcode("bounds_probe"), o);  // a local array of 8 words
  std::string why;
  if (!object) why = llvm::toString(object.takeError());
  REQUIRE_MESSAGE(why.empty(), why);
  const auto bytes = (*object)->getBuffer();
  CHECK(bytes.contains(jitd::kStackGuardSymbol));  // the frame has its canary
  CHECK(bytes.contains(jitd::kStackSmashedSymbol));
  for (const auto& m : misses) {
    MESSAGE("fast instruction selector missed: " << m);
    CHECK(m.find("stackguard") == std::string::npos);
    CHECK(m.find("addrspace(257)") == std::string::npos);
    CHECK(m.find(jitd::kStackGuardSymbol) == std::string::npos);
    CHECK(m.find("ferry.canary") == std::string::npos);
  }
  // The list is real: the same module with LLVM's canary (sspstrong on
  // the unchecked module, which containment leaves alone) misses the %fs load.
  llvm::LLVMContext ctx;
  auto m = parse("bounds_probe", ctx);
  for (llvm::Function& f : *m)
    if (!f.isDeclaration()) f.addFnAttr(llvm::Attribute::StackProtectStrong);
  llvm::SmallVector<char, 0> rewritten;
  {
    llvm::raw_svector_ostream out(rewritten);
    llvm::WriteBitcodeToFile(*m, out);
  }
  o.bounds = o.meter = false;
  std::vector<std::string> llvm_canary_misses;
  o.fast_isel_misses = &llvm_canary_misses;
  auto plain = jitd::compile_bitcode(std::span(reinterpret_cast<const std::uint8_t*>(rewritten.data()), rewritten.size()), o);
  REQUIRE(plain);
  bool fs_load = false;
  for (const auto& miss : llvm_canary_misses) fs_load |= miss.find("addrspace(257)") != std::string::npos;
  CHECK(fs_load);
}

// The fast tier splits vector code into scalar code before code generation
// (compile.cpp): the fast instruction selector cannot select vector loads,
// arithmetic, lane extraction or a branch to a vector PHI, and each miss
// sent the rest of its block through SelectionDAG. The split code gives
// the same answers.
TEST_CASE("fast tier: vector code is split into scalar code, stays on the fast instruction selector, and adds up") {
  auto host = jitd::node_target::resolve({});
  REQUIRE(host);
  const llvm::StringSet<>& allowed = hook_symbols();
  for (const bool contained : {true, false}) {
    CAPTURE(contained);
    jitd::compile_options o;
    o.entry_symbol = "ferry_test_hostile_entry";
    o.target = &*host;
    o.allowed = &allowed;
    o.meter = o.bounds = contained;
    std::vector<std::string> misses;
    o.fast_isel_misses = &misses;
    auto object = jitd::compile_bitcode(bitcode("vector_sum"), o);
    std::string why;
    if (!object) why = llvm::toString(object.takeError());
    REQUIRE_MESSAGE(why.empty(), why);
    for (const auto& m : misses) MESSAGE("fast instruction selector missed: " << m);
    CHECK(misses.empty());
  }
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.bounds_checks = false;  // run without a node's call context
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto fn = REQUIRE_OK(load_now(*engine, hostile_code("vector_sum")));
  std::vector<std::uint64_t> words(10);
  for (std::uint64_t i = 0; i < words.size(); ++i) words[i] = (i + 1) * 1000003;
  for (const std::uint64_t n : {0, 2, 10}) {
    CAPTURE(n);
    struct {
      const std::uint64_t* words;
      std::uint64_t n;
    } args{words.data(), n};
    std::uint64_t sum = 0;
    CHECK(fn(nullptr, &args, &sum) == 0);
    std::uint64_t expected = 0;
    for (std::uint64_t i = 0; i < n; ++i) expected += words[i];
    CHECK(sum == expected);
  }
}
