#include "compile.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <iterator>

#include <llvm/ADT/StringSet.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/DebugInfo.h>
#include <llvm/IR/DiagnosticHandler.h>
#include <llvm/IR/DiagnosticInfo.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/IRReader/IRReader.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/SmallVectorMemoryBuffer.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/Scalar/Scalarizer.h>

#include "contain.hpp"
#include "error.hpp"

namespace ferry::jitd {
namespace {

llvm::Error violation(std::string what) { return fail(errc::policy_violation, std::move(what)); }

std::string function_of(const llvm::Instruction& i) { return i.getFunction()->getName().str(); }

llvm::Error check_entry(const llvm::Module& m, const std::string& entry, bool uniform) {
  const llvm::Function* f = m.getFunction(entry);
  if (!f || f->isDeclaration())
    return fail(errc::bad_format, fmt::format("entry symbol '{}' is not defined by the module", entry));
  if (f->hasLocalLinkage()) return fail(errc::bad_format, fmt::format("entry symbol '{}' is not exported", entry));
  if (!uniform) return llvm::Error::success();
  const llvm::FunctionType* t = f->getFunctionType();
  const bool is_uniform = t->getReturnType()->isIntegerTy(32) && !t->isVarArg() && t->getNumParams() == 3 &&
                       llvm::all_of(t->params(), [](llvm::Type* p) { return p->isPointerTy(); });
  if (!is_uniform) return fail(errc::bad_format, fmt::format("entry symbol '{}' is not int32_t(ptr, ptr, ptr)", entry));
  return llvm::Error::success();
}

// With bounds checks, may code call intrinsic `f`? Yes if contain.cpp
// checks the ranges it touches (checks_intrinsic), or if it touches no
// memory the code could aim (none, or only memory no pointer reaches);
// stackrestore only back to a stacksave (its call sites:
// stack_restore_followed). Everything else — the element-wise atomic
// memcpy, write_register, target intrinsics that load or store — would read
// or write where no check looks.
bool intrinsic_followed(const llvm::Function& f) {
  if (checks_intrinsic(f.getIntrinsicID())) return true;
  switch (f.getIntrinsicID()) {
    case llvm::Intrinsic::vaend:  // writes nothing on the targets ferry serves
    case llvm::Intrinsic::lifetime_start:  // markers: no access
    case llvm::Intrinsic::lifetime_end:
    case llvm::Intrinsic::invariant_start:
    case llvm::Intrinsic::invariant_end:
    case llvm::Intrinsic::launder_invariant_group:
    case llvm::Intrinsic::strip_invariant_group:
    case llvm::Intrinsic::prefetch:  // a hint: never faults, loads nothing into the code
    case llvm::Intrinsic::stacksave:
    case llvm::Intrinsic::stackrestore:
    case llvm::Intrinsic::debugtrap:
      return true;
    default:
      return f.doesNotAccessMemory() || f.onlyAccessesInaccessibleMemory();
  }
}

// The first address space other than 0 a pointer of `i` (its result or an
// operand, a vector of pointers included) is in; 0 if none.
unsigned foreign_address_space(const llvm::Instruction& i) {
  auto space = [](const llvm::Type* t) -> unsigned {
    const llvm::Type* s = t->getScalarType();
    return s->isPointerTy() ? s->getPointerAddressSpace() : 0;
  };
  if (const unsigned as = space(i.getType())) return as;
  for (const llvm::Value* v : i.operand_values())
    if (const unsigned as = space(v->getType())) return as;
  return 0;  // (an alloca's result type carries its address space)
}

// stackrestore moves the stack pointer: only to a value a stacksave gave
// (what C's variable-length arrays compile to), or calls and spills would
// write wherever it points.
bool stack_restore_followed(const llvm::Value* to) {
  llvm::SmallPtrSet<const llvm::Value*, 8> seen;
  llvm::SmallVector<const llvm::Value*, 8> todo{to};
  while (!todo.empty()) {
    const llvm::Value* v = todo.pop_back_val()->stripPointerCasts();
    if (!seen.insert(v).second) continue;
    if (const auto* phi = llvm::dyn_cast<llvm::PHINode>(v)) {
      todo.append(phi->incoming_values().begin(), phi->incoming_values().end());
      continue;
    }
    const auto* save = llvm::dyn_cast<llvm::IntrinsicInst>(v);
    if (!save || save->getIntrinsicID() != llvm::Intrinsic::stacksave) return false;
  }
  return true;
}

}  // namespace

void optimize_module(llvm::Module& m, llvm::TargetMachine& tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2).run(m, mam);
}

llvm::Error check_policy(const llvm::Module& m, const llvm::DataLayout& node_layout, const compile_options& o) {
  if (m.getDataLayout() != node_layout)
    return violation(fmt::format("data layout '{}' differs from this node's '{}'",
                                 m.getDataLayoutStr(), node_layout.getStringRepresentation()));
  const llvm::Triple mt(m.getTargetTriple());
  if (mt.getArch() != o.target->triple().getArch() || mt.getOS() != o.target->triple().getOS())
    return violation(fmt::format("module triple '{}' does not match this node's '{}'", m.getTargetTriple(),
                                 o.target->triple().str()));
  if (!m.getModuleInlineAsm().empty()) return violation("module-level inline asm is not allowed");
  if (!m.ifunc_empty()) return violation(fmt::format("ifunc '{}' is not allowed", m.ifuncs().begin()->getName().str()));
  for (const char* name : {"llvm.global_ctors", "llvm.global_dtors"})
    if (m.getNamedGlobal(name))
      return violation(fmt::format("static constructors/destructors ({}) are not allowed", name));
  std::uint64_t data_bytes = 0;
  for (const llvm::GlobalVariable& g : m.globals()) {
    if (!g.isDeclaration()) data_bytes += node_layout.getTypeAllocSize(g.getValueType()).getKnownMinValue();
    if (o.max_data_bytes != 0 && data_bytes > o.max_data_bytes)
      return fail(errc::too_large, fmt::format("the code's global variables take more than {} bytes (at '{}'): this "
                                               "node's limit is {} (jit_config::max_data_bytes)",
                                               data_bytes, g.getName().str(), o.max_data_bytes));
    if (g.isThreadLocal())
      return violation(fmt::format("thread-local variable '{}' is not allowed", g.getName().str()));
    // ForLinker: available_externally bodies are not emitted either.
    if (g.isDeclarationForLinker() && !o.any_symbol && !o.allowed->contains(g.getName()))
      return violation(fmt::format("undefined symbol '{}' (a variable) is not on the allow-list", g.getName().str()));
  }
  for (const llvm::Function& f : m.functions()) {
    if (f.isDeclarationForLinker()) {
      if (!f.isIntrinsic() && !o.any_symbol && !o.allowed->contains(f.getName()))
        return violation(fmt::format("undefined symbol '{}' is not on the allow-list", f.getName().str()));
      if (o.bounds && f.isIntrinsic()) {
        if (!intrinsic_followed(f))
          return violation(fmt::format("intrinsic '{}' reads or writes memory the bounds checks cannot follow",
                                       f.getName().str()));
        if (f.getIntrinsicID() == llvm::Intrinsic::stackrestore)
          for (const llvm::User* u : f.users())
            if (const auto* call = llvm::dyn_cast<llvm::CallBase>(u); call && !stack_restore_followed(call->getArgOperand(0)))
              return violation(fmt::format("llvm.stackrestore in function '{}' to a value no llvm.stacksave gave",
                                           function_of(*call)));
      }
      // Bounds checks follow the pointers of direct calls only (contain.hpp):
      // memcpy called through its address would write unchecked.
      if (o.bounds && !f.isIntrinsic())
        for (const llvm::Use& u : f.uses())
          if (const auto* call = llvm::dyn_cast<llvm::CallBase>(u.getUser()); !call || !call->isCallee(&u))
            return violation(fmt::format("the address of '{}' is taken: with bounds checks, runtime and libc "
                                         "functions may only be called directly",
                                         f.getName().str()));
      continue;
    }
    for (const llvm::Instruction& i : llvm::instructions(f)) {
      const auto* call = llvm::dyn_cast<llvm::CallBase>(&i);
      if (call && call->isInlineAsm())
        return violation(fmt::format("inline asm in function '{}' is not allowed", function_of(i)));
      // A pointer in another address space (x86's %fs and %gs segments, ...)
      // is an offset from a base no check sees.
      if (o.bounds)
        if (const unsigned as = foreign_address_space(i); as != 0)
          return violation(fmt::format("a pointer in address space {} in function '{}': with bounds checks, "
                                       "memory is reached through address space 0 only",
                                       as, function_of(i)));
      // Reads through the pointers a va_list holds, which plain stores can forge.
      if (o.bounds && llvm::isa<llvm::VAArgInst>(i))
        return violation(fmt::format("va_arg in function '{}': with bounds checks, read variadic arguments "
                                     "through the va_list's fields (as clang emits for x86-64 and aarch64)",
                                     function_of(i)));
    }
  }
  return check_entry(m, o.entry_symbol, o.uniform_entry);
}

namespace {

// The target machines a thread compiles with, kept from one compile to the
// next. A new machine costs more than generating a small module's code:
// each function's subtarget (kSubtargetAttributes, with every implied
// feature) is built afresh, about 1 ms of a 2 ms compile of the pointer
// chase's code object on this machine. A machine keeps one subtarget per
// distinct set of those attributes among the functions it compiled, and
// they come from the bitcode: a machine is dropped once it has seen
// kMaxKeptSubtargets of them, so no stream of code objects grows it
// without bound. TargetMachine caches subtargets without a lock, hence one
// set of machines per thread.
class kept_machines {
 public:
  llvm::Expected<llvm::TargetMachine*> get(const node_target& target, jit_tier tier, const llvm::Module& m) {
    auto it = find(target, tier);
    if (it != kept_.end() && !it->admit(m)) {
      kept_.erase(it);
      it = kept_.end();
    }
    if (it == kept_.end()) {
      auto builder = target.machine_builder();
      builder.setCodeGenOptLevel(tier == jit_tier::optimized ? llvm::CodeGenOptLevel::Default
                                                             : llvm::CodeGenOptLevel::None);
      auto tm = builder.createTargetMachine();
      if (!tm) return tm.takeError();
      if (kept_.size() == kMaxMachines) kept_.erase(kept_.begin());
      kept_.push_back(kept{key_of(target, tier), std::move(*tm), {}});
      it = std::prev(kept_.end());
      it->admit(m);
    }
    return it->machine.get();
  }

  std::size_t subtargets(const node_target& target, jit_tier tier) {
    const auto it = find(target, tier);
    return it == kept_.end() ? 0 : it->subtargets.size();
  }

 private:
  static constexpr std::size_t kMaxMachines = 4;  // targets x tiers one thread compiles for

  struct kept {
    std::string key;
    std::unique_ptr<llvm::TargetMachine> machine;
    llvm::StringSet<> subtargets;
    // Notes the subtargets `m`'s functions ask for; false once there are
    // more than this machine may keep.
    bool admit(const llvm::Module& m) {
      for (const llvm::Function& f : m.functions()) {
        if (f.isDeclaration()) continue;
        std::string key;
        for (const char* name : kSubtargetAttributes)
          key.append(f.getFnAttribute(name).getValueAsString()).push_back('|');
        subtargets.insert(key);
      }
      return subtargets.size() <= kMaxKeptSubtargets;
    }
  };

  static std::string key_of(const node_target& target, jit_tier tier) {
    return fmt::format("{}|{}|{}|{}", target.triple().str(), target.description().cpu, target.description().features,
                       static_cast<int>(tier));
  }
  std::vector<kept>::iterator find(const node_target& target, jit_tier tier) {
    const std::string key = key_of(target, tier);
    return std::find_if(kept_.begin(), kept_.end(), [&](const kept& k) { return k.key == key; });
  }

  std::vector<kept> kept_;
};

kept_machines& this_threads_machines() {
  thread_local kept_machines machines;
  return machines;
}

// At the fast tier, split vector operations into scalar ones before code
// generation. The fast instruction selector cannot select most vector
// instructions (or a branch to a block with a vector PHI), and each miss
// sends the rest of its block through SelectionDAG: the optimizer's
// vectorized loops made the bench's chase kernel compile in 3.0 ms instead
// of 1.75 (docs/jit.md, "What leaves the fast instruction selector"). Run
// after containment, so a vector access is still checked once, as a whole.
void scalarize(llvm::Module& m, llvm::TargetMachine& tm) {
  llvm::FunctionAnalysisManager fam;
  fam.registerPass([] { return llvm::DominatorTreeAnalysis(); });
  fam.registerPass([&tm] { return tm.getTargetIRAnalysis(); });
  fam.registerPass([] { return llvm::PassInstrumentationAnalysis(); });
  llvm::ScalarizerPassOptions options;
  options.ScalarizeLoadStore = true;
  llvm::ScalarizerPass pass(options);
  for (llvm::Function& f : m)
    if (!f.isDeclaration()) (void)pass.run(f, fam);
}

// Check, contain and compile parsed, verified module `m` into an object.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compile_module(llvm::Module& m, const compile_options& o) {
  auto tm = this_threads_machines().get(*o.target, o.tier, m);
  if (!tm) return tm.takeError();
  if (auto e = check_policy(m, (*tm)->createDataLayout(), o)) return std::move(e);

  if (o.tier == jit_tier::optimized) optimize_module(m, **tm);
  // Checks as calls at the fast tier: its compile is on the first call's
  // path, and the inline form is several times more code to generate.
  contain_module(m, {o.meter, o.bounds, o.tier == jit_tier::optimized, o.entry_symbol});
  if (o.tier == jit_tier::fast) scalarize(m, **tm);
  llvm::SmallVector<char, 0> object;
  {
    llvm::raw_svector_ostream out(object);
    llvm::legacy::PassManager pm;
    if ((*tm)->addPassesToEmitFile(pm, out, nullptr, llvm::CodeGenFileType::ObjectFile))
      return fail(errc::compile_error, "this LLVM target cannot emit object files");
    pm.run(m);
  }
  return std::make_unique<llvm::SmallVectorMemoryBuffer>(std::move(object), "ferry-jit-object", false);
}

// Collects the fast instruction selector's misses (compile_options::fast_isel_misses).
class fast_isel_misses final : public llvm::DiagnosticHandler {
 public:
  explicit fast_isel_misses(std::vector<std::string>& out) : out_(out) {}
  bool isAnyRemarkEnabled() const override { return true; }
  bool isMissedOptRemarkEnabled(llvm::StringRef pass) const override { return pass == kPass; }
  bool handleDiagnostics(const llvm::DiagnosticInfo& d) override {
    const auto* r = llvm::dyn_cast<llvm::DiagnosticInfoOptimizationBase>(&d);
    if (!r || r->getPassName() != kPass) return false;
    out_.push_back(r->getMsg());
    return true;
  }

 private:
  static constexpr llvm::StringLiteral kPass = "sdagisel";
  std::vector<std::string>& out_;
};

}  // namespace

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compile_bitcode(std::span<const std::uint8_t> bitcode,
                                                                    const compile_options& o) {
  llvm::LLVMContext ctx;
  if (o.fast_isel_misses) ctx.setDiagnosticHandler(std::make_unique<fast_isel_misses>(*o.fast_isel_misses));
  const llvm::MemoryBufferRef ref(
      llvm::StringRef(reinterpret_cast<const char*>(bitcode.data()), bitcode.size()), "code-object");
  auto parsed = llvm::parseBitcodeFile(ref, ctx);
  if (!parsed)
    return fail(errc::bad_format, fmt::format("bitcode does not parse: {}", llvm::toString(parsed.takeError())));
  llvm::Module& m = **parsed;

  std::string why;
  llvm::raw_string_ostream os(why);
  bool broken_debug_info = false;
  if (llvm::verifyModule(m, &os, &broken_debug_info))
    return fail(errc::bad_format, fmt::format("bitcode fails verification: {}", why));
  if (broken_debug_info) llvm::StripDebugInfo(m);  // debug info is optional: drop it, keep the code
  return compile_module(m, o);
}

std::size_t kept_subtargets(const node_target& target, jit_tier tier) {
  return this_threads_machines().subtargets(target, tier);
}

std::vector<std::pair<std::string, std::string>> default_subtarget_attributes(const llvm::Triple& triple) {
  // What clang 19 writes on every function it compiles without -march,
  // -mcpu or -mtune (test_jit_target compares them with bitcode the
  // build's clang made).
  if (triple.getArch() == llvm::Triple::x86_64)
    return {{"min-legal-vector-width", "0"},
            {"target-cpu", "x86-64"},
            {"target-features", "+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,+x87"},
            {"tune-cpu", "generic"}};
  if (triple.getArch() == llvm::Triple::aarch64)
    return {{"target-cpu", "generic"}, {"target-features", "+fp-armv8,+neon,+outline-atomics,+v8a,-fmv"}};
  return {};
}

code_variant default_variant(const llvm::Triple& triple) {
  code_variant v;
  v.triple = llvm::Triple::normalize(triple.getArchName().str() + "-linux-gnu");
  for (const auto& [name, value] : default_subtarget_attributes(triple)) {
    if (name == "target-cpu") v.cpu = value;
    if (name == "target-features") v.features = value;
  }
  v.llvm_version = LLVM_VERSION_STRING;
  return v;
}

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> warm_up(compile_options o) {
  // A uniform entry (ferry_entry_fn) that sums the words its argument block
  // points at through a helper taking a struct by value, with a local
  // buffer, a call returning a pair, unsigned division, select and a
  // two-word vector: what contain_module instruments (it adds the stack
  // canaries), the fast tier scalarizes and the code generator lowers in
  // typical mobile code (the pointer chase's code object has each of these).
  static constexpr const char* kWarmUpIR = R"(
%span = type { ptr, i64 }

define internal { i64, i64 } @ferry_warm_up_pair(i64 %a, i64 %b) noinline {
  %p = insertvalue { i64, i64 } undef, i64 %a, 0
  %q = insertvalue { i64, i64 } %p, i64 %b, 1
  ret { i64, i64 } %q
}

define internal i64 @ferry_warm_up_sum(ptr byval(%span) align 8 %s, i32 %k) noinline {
entry:
  %buf = alloca [16 x i8], align 16
  store i8 0, ptr %buf
  %pp = getelementptr %span, ptr %s, i32 0, i32 0
  %p = load ptr, ptr %pp
  %np = getelementptr %span, ptr %s, i32 0, i32 1
  %n = load i64, ptr %np
  %none = icmp eq i64 %n, 0
  br i1 %none, label %done, label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc1, %loop ]
  %a = getelementptr i64, ptr %p, i64 %i
  %v = load i64, ptr %a
  %k64 = zext i32 %k to i64
  %r = urem i64 %v, %k64
  %d = udiv i64 %v, %k64
  %pair = call { i64, i64 } @ferry_warm_up_pair(i64 %r, i64 %d)
  %x = extractvalue { i64, i64 } %pair, 0
  %y = extractvalue { i64, i64 } %pair, 1
  %big = icmp ugt i64 %x, %y
  %odd = trunc i64 %v to i1
  %both = select i1 %big, i1 %odd, i1 false
  %pick = select i1 %both, i64 %x, i64 %y
  %acc1 = add i64 %acc, %pick
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %loop, label %done
done:
  %s1 = phi i64 [ 0, %entry ], [ %acc1, %loop ]
  ret i64 %s1
}

define i32 @ferry_warm_up(ptr %cx, ptr %args, ptr %result) {
entry:
  %s = alloca %span, align 8
  %n = load i64, ptr %args
  %pp = getelementptr i8, ptr %args, i64 8
  %p = load ptr, ptr %pp
  store ptr %p, ptr %s
  %np = getelementptr %span, ptr %s, i32 0, i32 1
  store i64 %n, ptr %np
  %sum = call i64 @ferry_warm_up_sum(ptr byval(%span) align 8 %s, i32 7)
  %words = load <2 x i64>, ptr %s, align 8
  %more = add <2 x i64> %words, <i64 1, i64 1>
  %second = extractelement <2 x i64> %more, i64 1
  %total = add i64 %sum, %second
  store i64 %total, ptr %result
  ret i32 0
}
)";
  // Parsed from text, then written as bitcode and compiled from that, as
  // a code object's bitcode is.
  std::vector<std::uint8_t> bitcode;
  {
    llvm::LLVMContext ctx;
    llvm::SMDiagnostic diag;
    auto m = llvm::parseIR(llvm::MemoryBufferRef(kWarmUpIR, "ferry-warm-up"), diag, ctx);
    if (!m) return fail(errc::internal, fmt::format("the warm-up module does not parse: {}", diag.getMessage().str()));
    auto layout = o.target->machine_builder().getDefaultDataLayoutForTarget();
    if (!layout) return layout.takeError();
    m->setTargetTriple(o.target->triple().str());
    m->setDataLayout(*layout);
    for (llvm::Function& f : m->functions())
      for (const auto& [name, value] : default_subtarget_attributes(o.target->triple())) f.addFnAttr(name, value);
    llvm::SmallVector<char, 0> buffer;
    llvm::raw_svector_ostream out(buffer);
    llvm::WriteBitcodeToFile(*m, out);
    bitcode.assign(buffer.begin(), buffer.end());
  }
  o.entry_symbol = kWarmUpEntry;
  return compile_bitcode(bitcode, o);
}

}  // namespace ferry::jitd
