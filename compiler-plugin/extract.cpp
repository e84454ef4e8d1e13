// The IR side: per mobile function, the self-contained module that becomes a
// code object variant (emit mode), or the address index records (the
// target's own compile). The same reachability walk backs up the AST rules
// in both modes, for what only shows after code generation (exceptions,
// vtables, typeinfo, ...).
#include "extract.hpp"

#include <set>
#include <string>
#include <vector>

#include <llvm/ADT/SmallString.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/Demangle/Demangle.h>
#include <llvm/IR/DebugInfo.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/Utils/Cloning.h>
#include <llvm/Transforms/Utils/ModuleUtils.h>

#include <ferry/code_registry.hpp>

#include "allow_list.hpp"
#include "diagnostics.hpp"

namespace ferry::plugin {
namespace {

using namespace llvm;

std::string readable(StringRef symbol) { return demangle(symbol.str()); }

// Every global value a constant refers to (through constant expressions and
// aggregates).
void globals_in(const Constant* c, std::set<const Constant*>& seen, std::vector<const GlobalValue*>& out) {
  if (!seen.insert(c).second) return;
  if (const auto* gv = dyn_cast<GlobalValue>(c)) {
    out.push_back(gv);
    return;
  }
  for (const Use& op : c->operands())
    if (const auto* oc = dyn_cast<Constant>(op.get())) globals_in(oc, seen, out);
}

// The functions and constants `root` needs, or the reasons it cannot travel.
struct closure {
  std::set<const GlobalValue*> keep;
  std::vector<std::string> problems;
};

closure reach(const Function& root) {
  closure r;
  std::vector<const GlobalValue*> work{&root};
  std::set<const Constant*> seen;
  auto note = [&](std::string p) {
    if (std::find(r.problems.begin(), r.problems.end(), p) == r.problems.end()) r.problems.push_back(std::move(p));
  };
  while (!work.empty()) {
    const GlobalValue* gv = work.back();
    work.pop_back();
    if (!r.keep.insert(gv).second) continue;
    std::vector<const GlobalValue*> refs;
    if (const auto* f = dyn_cast<Function>(gv)) {
      if (f->isIntrinsic()) continue;
      if (f->isDeclaration()) {
        if (!is_allowed_external(f->getName()))
          note("calls '" + readable(f->getName()) +
               "', which is neither defined in this translation unit nor on the allow-list (docs/plugin.md)");
        continue;
      }
      if (f->hasPersonalityFn()) globals_in(f->getPersonalityFn(), seen, refs);
      for (const auto& bb : *f)
        for (const auto& inst : bb) {
          if (const auto* call = dyn_cast<CallBase>(&inst); call && call->isInlineAsm())
            note("contains inline assembly");
          for (const Use& op : inst.operands())
            if (const auto* c = dyn_cast<Constant>(op.get())) globals_in(c, seen, refs);
        }
    } else if (const auto* v = dyn_cast<GlobalVariable>(gv)) {
      const std::string name = readable(v->getName());
      if (v->isDeclaration()) note("uses '" + name + "', which is not defined in this translation unit");
      else if (v->isThreadLocal()) note("uses thread-local variable '" + name + "'");
      else if (!v->isConstant()) note("uses mutable global '" + name + "' (every node would get its own copy)");
      else globals_in(v->getInitializer(), seen, refs);
    } else if (const auto* a = dyn_cast<GlobalAlias>(gv)) {
      if (const auto* target = a->getAliaseeObject()) refs.push_back(target);
    } else {
      note("uses '" + readable(gv->getName()) + "', which cannot be copied to another node");
    }
    work.insert(work.end(), refs.begin(), refs.end());
  }
  return r;
}

Function* find_thunk(Module& m, const mobile_fn& fn) { return m.getFunction(fn.call_symbol); }

// `i32 __ferry_entry.<symbol>(ptr cx, ptr args, ptr result)`: copies the
// argument block (no alignment guaranteed) to an aligned local, calls the
// thunk (whatever ABI clang gave its result) and copies result_size bytes.
Function* make_entry(Module& m, Function& thunk, const mobile_fn& fn, std::string& error) {
  LLVMContext& ctx = m.getContext();
  Type* ptr = PointerType::getUnqual(ctx);
  Type* i32 = Type::getInt32Ty(ctx);
  auto* entry = Function::Create(FunctionType::get(i32, {ptr, ptr, ptr}, false), GlobalValue::ExternalLinkage,
                                 entry_prefix + fn.symbol, m);
  AttrBuilder attrs(ctx, thunk.getAttributes().getFnAttrs());
  attrs.removeAttribute(Attribute::OptimizeNone).removeAttribute(Attribute::NoInline).removeAttribute(Attribute::AlwaysInline);
  entry->addFnAttrs(attrs);
  IRBuilder<> b(BasicBlock::Create(ctx, "entry", entry));
  std::uint32_t block_align = 1;
  for (const auto& p : fn.params) block_align = std::max(block_align, p.align);
  AllocaInst* block = b.CreateAlloca(ArrayType::get(b.getInt8Ty(), std::max<std::uint32_t>(fn.args_size, 1)));
  block->setAlignment(Align(block_align));
  if (fn.args_size > 0) b.CreateMemCpy(block, block->getAlign(), entry->getArg(1), Align(1), fn.args_size);
  Value* ours[] = {entry->getArg(0), block};
  std::vector<Value*> call_args;
  AllocaInst* slot = nullptr;
  unsigned next = 0;
  const DataLayout& dl = m.getDataLayout();
  for (unsigned i = 0; i < thunk.arg_size(); ++i) {
    if (thunk.hasParamAttribute(i, Attribute::StructRet)) {
      slot = b.CreateAlloca(thunk.getParamStructRetType(i));
      call_args.push_back(slot);
    } else if (next < 2) {
      call_args.push_back(ours[next++]);
    } else {
      error = "internal error: unexpected thunk signature";
      return nullptr;
    }
  }
  CallInst* call = b.CreateCall(thunk.getFunctionType(), &thunk, call_args);
  call->setAttributes(thunk.getAttributes());
  call->setCallingConv(thunk.getCallingConv());
  if (fn.result_size > 0) {
    if (!slot) {
      slot = b.CreateAlloca(call->getType());
      b.CreateStore(call, slot);
    }
    if (dl.getTypeAllocSize(slot->getAllocatedType()) < fn.result_size) {
      error = "internal error: the lowered result is smaller than the result type";
      return nullptr;
    }
    b.CreateMemCpy(entry->getArg(2), Align(1), slot, slot->getAlign(), fn.result_size);
  }
  b.CreateRet(ConstantInt::get(i32, 0));
  InlineFunctionInfo ifi;
  InlineFunction(*call, ifi);
  return entry;
}

// After internalizing, the O2 pipeline drops what is unreachable (GlobalDCE)
// and cleans up the entry (the JIT does not run IR optimizations).
void optimize(Module& m) {
  LoopAnalysisManager lam;
  FunctionAnalysisManager fam;
  CGSCCAnalysisManager cgam;
  ModuleAnalysisManager mam;
  PassBuilder pb;
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  pb.buildPerModuleDefaultPipeline(OptimizationLevel::O2).run(m, mam);
}

// The module of one code object variant, from the optimized TU module.
bool extract(const Module& tu, const std::set<const GlobalValue*>& keep, const mobile_fn& fn, const state& st,
             code_object& out, std::string& error) {
  ValueToValueMapTy vmap;
  auto m = CloneModule(tu, vmap, [&](const GlobalValue* gv) { return keep.contains(gv); });
  // Nothing outside the keep-set travels: not the TU's used lists,
  // annotations, constructors, index records or module asm.
  for (const char* name : {"llvm.used", "llvm.compiler.used", "llvm.global.annotations", "llvm.global_ctors",
                           "llvm.global_dtors"})
    if (auto* g = m->getGlobalVariable(name)) g->eraseFromParent();
  m->setModuleInlineAsm("");
  Function* thunk = m->getFunction(fn.call_symbol);
  Function* entry = thunk ? make_entry(*m, *thunk, fn, error) : nullptr;
  if (!entry) {
    if (error.empty()) error = "internal error: entry thunk missing";
    return false;
  }
  for (Function& f : *m) {
    if (f.isDeclaration() || &f == entry) continue;
    f.setComdat(nullptr);
    f.removeFnAttr(Attribute::OptimizeNone);
    f.removeFnAttr(Attribute::NoInline);
    // Mobile functions keep their symbol so the runtime can map a JIT
    // address (cx.forward(&fn, ...)) back to a code object; weak_odr lets
    // several code objects that contain the same one share a JITDylib.
    if (st.fns.contains(f.getName().str())) {
      f.setLinkage(GlobalValue::WeakODRLinkage);
      f.setVisibility(GlobalValue::DefaultVisibility);
    } else {
      f.setLinkage(GlobalValue::InternalLinkage);
    }
  }
  for (GlobalVariable& g : m->globals())
    if (!g.isDeclaration()) {
      g.setComdat(nullptr);
      g.setLinkage(GlobalValue::InternalLinkage);
    }
  for (GlobalAlias& a : m->aliases()) a.setLinkage(GlobalValue::InternalLinkage);
  m->getComdatSymbolTable().clear();
  StripDebugInfo(*m);
  // Paths would make the id depend on where the build ran.
  m->setSourceFileName(fn.symbol);
  m->setModuleIdentifier(fn.symbol);
  optimize(*m);
  for (auto it = m->begin(); it != m->end();) {
    Function& f = *it++;
    if (f.isDeclaration() && f.use_empty()) f.eraseFromParent();
  }
  std::string verify_errors;
  raw_string_ostream vos(verify_errors);
  if (verifyModule(*m, &vos)) {
    error = "internal error: extracted module does not verify: " + verify_errors;
    return false;
  }

  out.name = fn.name;
  out.symbol = fn.symbol;
  out.entry_symbol = entry_prefix + fn.symbol;
  out.params = fn.params;
  out.args_size = fn.args_size;
  out.result_size = fn.result_size;
  out.result_type = fn.result_type;
  out.signature_hash = signature_hash_of(fn.result_type, fn.params);
  for (const Function& f : *m) {
    if (f.isDeclaration() || f.getName() == fn.symbol || !st.fns.contains(f.getName().str())) continue;
    const bool address_taken = std::any_of(f.uses().begin(), f.uses().end(), [](const Use& u) {
      const auto* call = dyn_cast<CallBase>(u.getUser());
      return !call || !call->isCallee(&u);
    });
    if (address_taken) out.references.push_back(f.getName().str());
  }
  code_variant v;
  v.triple = m->getTargetTriple();
  v.cpu = entry->getFnAttribute("target-cpu").getValueAsString().str();
  v.features = entry->getFnAttribute("target-features").getValueAsString().str();
  v.llvm_version = LLVM_VERSION_STRING;
  SmallVector<char, 0> buf;
  raw_svector_ostream bos(buf);
  WriteBitcodeToFile(*m, bos);
  v.bitcode.assign(buf.begin(), buf.end());
  out.variants.push_back(std::move(v));
  out.seal();
  return true;
}

// One retained {address, symbol} record per mobile function this module
// defines, in section ferry_fn_index (see <ferry/code_registry.hpp>).
void add_index_records(Module& m, const state& st) {
  LLVMContext& ctx = m.getContext();
  Type* ptr = PointerType::getUnqual(ctx);
  auto* record = StructType::get(ctx, {ptr, ptr});
  std::vector<GlobalValue*> used;
  for (const auto& [sym, fn] : st.fns) {
    Function* f = m.getFunction(sym);
    if (!f || f->isDeclaration()) continue;
    auto* name = new GlobalVariable(m, ConstantDataArray::getString(ctx, sym)->getType(), true,
                                    GlobalValue::PrivateLinkage, ConstantDataArray::getString(ctx, sym),
                                    "__ferry_fn_name");
    name->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    auto* rec = new GlobalVariable(m, record, true, GlobalValue::InternalLinkage,
                                   ConstantStruct::get(record, {f, name}), "__ferry_fn_index");
    rec->setSection(std::string(fn_index_section_name));
    rec->setAlignment(m.getDataLayout().getABITypeAlign(ptr));
    used.push_back(rec);
  }
  // llvm.used (not compiler.used) is what gives the section SHF_GNU_RETAIN.
  if (!used.empty()) appendToUsed(m, used);
}

struct extract_pass : PassInfoMixin<extract_pass> {
  std::shared_ptr<state> st;

  PreservedAnalyses run(Module& m, ModuleAnalysisManager&) {
    auto& d = *st->diags;
    const bool emit = !st->emit_path.empty();
    std::vector<code_object> objects;
    for (const auto& [sym, fn] : st->fns) {
      const Function* root = emit ? find_thunk(m, fn) : m.getFunction(sym);
      if (!root || root->isDeclaration()) continue;  // not emitted here (e.g. inlined everywhere)
      const closure c = reach(*root);
      for (std::size_t i = 0; i < c.problems.size(); ++i)
        d.Report(fn.loc, i == 0 ? diag::extract(d) : diag::extract_more(d)) << fn.name << c.problems[i];
      if (!c.problems.empty() || !emit) continue;
      code_object co;
      std::string error;
      if (!extract(m, c.keep, fn, *st, co, error)) {
        d.Report(fn.loc, diag::plugin(d)) << error;
        continue;
      }
      objects.push_back(std::move(co));
    }
    if (!emit) {
      add_index_records(m, *st);
      return PreservedAnalyses::none();
    }
    if (d.hasErrorOccurred()) return PreservedAnalyses::all();
    std::error_code ec;
    raw_fd_ostream os(st->emit_path, ec, sys::fs::OF_None);
    if (!ec) {
      const auto bytes = encode_code_section(objects);
      os.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      os.close();
      if (os.has_error()) ec = os.error();
    }
    if (ec) d.Report(diag::plugin(d)) << ("cannot write code objects to '" + st->emit_path + "': " + ec.message());
    return PreservedAnalyses::all();
  }
};

}  // namespace

void register_passes(llvm::PassBuilder& pb, std::shared_ptr<state> st) {
  pb.registerOptimizerLastEPCallback([st](ModulePassManager& mpm, OptimizationLevel) {
    mpm.addPass(extract_pass{{}, st});
  });
}

}  // namespace ferry::plugin
