#include "contain.hpp"

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include <llvm/Analysis/AssumptionCache.h>
#include <llvm/Analysis/CFG.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/Analysis/ScalarEvolution.h>
#include <llvm/Analysis/ScalarEvolutionExpressions.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/Analysis/ValueTracking.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/Transforms/Utils/BasicBlockUtils.h>
#include <llvm/Transforms/Utils/LoopSimplify.h>
#include <llvm/Transforms/Utils/PromoteMemToReg.h>
#include <llvm/Transforms/Utils/ScalarEvolutionExpander.h>

namespace ferry::jitd {
namespace {

// Charge `units` (a constant) through the hook, at `before`.
void charge(llvm::FunctionCallee hook, llvm::Instruction* before, std::uint64_t units) {
  llvm::IRBuilder<> b(before);
  b.CreateCall(hook, {b.getInt64(units)});
}

// Does `f` call a function defined in the module, or through a pointer?
// (Intrinsics, the runtime API and libc functions do not call back.)
bool calls_code(const llvm::Function& f) {
  for (const auto& bb : f)
    for (const auto& i : bb)
      if (const auto* call = llvm::dyn_cast<llvm::CallBase>(&i)) {
        const llvm::Function* callee = call->getCalledFunction();
        if (!callee || !callee->isDeclaration()) return true;
      }
  return false;
}

void meter_function(llvm::Function& f, llvm::FunctionCallee hook) {
  // Every cycle of the CFG contains a DFS back edge, natural loop or not:
  // charging the target of each one bounds every loop.
  llvm::SmallVector<std::pair<const llvm::BasicBlock*, const llvm::BasicBlock*>, 8> back_edges;
  llvm::FindFunctionBackedges(f, back_edges);
  llvm::SmallPtrSet<llvm::BasicBlock*, 8> headers;
  for (auto& [from, to] : back_edges) headers.insert(const_cast<llvm::BasicBlock*>(to));

  llvm::BasicBlock& entry = f.getEntryBlock();
  llvm::IRBuilder<> b(&*entry.getFirstInsertionPt());
  llvm::AllocaInst* count = nullptr;
  if (!headers.empty()) {
    // One counter per activation, kept in a register after mem2reg below.
    count = b.CreateAlloca(b.getInt64Ty(), nullptr, "ferry.fuel");
    b.CreateStore(b.getInt64(0), count);
  }
  // The call itself, if it calls code that could call back: every cycle of
  // the call graph passes through such a function, so leaves (the common
  // small kernel, once inlined) run uncharged at no cost to the bound.
  if (calls_code(f)) charge(hook, &*b.GetInsertPoint(), 1);

  const auto unlikely = llvm::MDBuilder(f.getContext()).createBranchWeights(1, 1u << 20);
  for (llvm::BasicBlock* h : headers) {
    llvm::IRBuilder<> hb(&*h->getFirstInsertionPt());
    llvm::Value* n = hb.CreateAdd(hb.CreateLoad(hb.getInt64Ty(), count), hb.getInt64(1));
    hb.CreateStore(n, count);
    llvm::Value* due = hb.CreateICmpEQ(hb.CreateAnd(n, hb.getInt64(kFuelBlock - 1)), hb.getInt64(0));
    llvm::Instruction* then = llvm::SplitBlockAndInsertIfThen(due, &*hb.GetInsertPoint(), false, unlikely);
    charge(hook, then, kFuelBlock);
  }
  if (count) {
    llvm::DominatorTree dt(f);
    llvm::PromoteMemToReg({count}, dt);
  }
}


// ---- Bounds checks --------------------------------------------------------

// The size of a va_list on the module's target: a struct of two offsets and
// two pointers on x86-64, of three pointers and two offsets on aarch64
// (AAPCS64), a pointer elsewhere.
std::uint64_t va_list_bytes(const llvm::Module& m) {
  const llvm::Triple t(m.getTargetTriple());
  if (t.getArch() == llvm::Triple::x86_64) return 24;
  if (t.isAArch64() && !t.isOSDarwin() && !t.isOSWindows()) return 32;
  return m.getDataLayout().getPointerSize();
}

// What every check needs: the slow paths and this module's own regions.
struct bounds_module {
  const llvm::DataLayout& dl;
  llvm::FunctionCallee miss;        // {i64 lo, i64 span} ferry_bounds(i64 address, i64 size): a read
  llvm::FunctionCallee miss_write;  // {i64 lo, i64 span} ferry_bounds_write(i64 address, i64 size): a write
  llvm::FunctionCallee outside;  // void ferry_bounds_object(i64 address, i64 size, i64 object, i64 object_bytes)
  llvm::IntegerType* i64;
  std::uint64_t va_list_bytes;  // what va_start and va_copy write (and read)
};

// One access to check: `size` bytes (an i64 value) at `ptr`, before `at`;
// `write`: it may write them (a write is admitted only where the call may
// write: ferry_bounds_write).
struct access {
  llvm::Instruction* at;
  llvm::Value* ptr;
  llvm::Value* size;
  bool write;
};

// A vector access to check: `bytes` at each of `ptrs` (<N x ptr>) whose
// lane of `mask` (<N x i1>) is set, before `at`.
struct lanes {
  llvm::Instruction* at;
  llvm::Value* ptrs;
  llvm::Value* mask;
  std::uint64_t bytes;
  bool write;
};

// The slow path of an access that reads, or may write.
llvm::FunctionCallee miss_of(const bounds_module& bm, bool write) { return write ? bm.miss_write : bm.miss; }

// The size of `base` when it is an object of this module whose every byte
// ferry_bounds admits: an alloca of a fixed size (the call's stack) or a
// global the module defines (a row of module_regions()).
std::optional<std::uint64_t> own_object_bytes(const bounds_module& bm, const llvm::Value* base) {
  if (const auto* a = llvm::dyn_cast<llvm::AllocaInst>(base)) {
    const auto s = a->getAllocationSize(bm.dl);
    if (!s || s->isScalable()) return std::nullopt;
    return s->getFixedValue();
  }
  if (const auto* g = llvm::dyn_cast<llvm::GlobalVariable>(base)) {
    if (g->isDeclarationForLinker() || g->isInterposable() || g->getName().starts_with("llvm.")) return std::nullopt;
    return bm.dl.getTypeAllocSize(g->getValueType()).getFixedValue();
  }
  return std::nullopt;
}

// The object of this module an access at `ptr` is computed from, when
// LLVM can tell (through GEPs and casts): a fixed-size local or a global
// the module defines. Its access must stay inside it: any other address
// (another local, the frame's saved registers, another global) is refused,
// where ferry_bounds would admit the whole stack and every global.
struct own_object {
  llvm::Value* base;
  std::uint64_t bytes;
};

std::optional<own_object> own_object_of(const bounds_module& bm, llvm::Value* ptr) {
  llvm::Value* base = llvm::getUnderlyingObject(ptr);
  if (const auto bytes = own_object_bytes(bm, base)) return own_object{base, *bytes};
  return std::nullopt;
}

// Is [ptr, ptr + size) inside an alloca or a global of this module, by
// constant offsets alone? Those accesses need no check at run time.
bool statically_inside(const bounds_module& bm, llvm::Value* ptr, llvm::Value* size) {
  const auto* n = llvm::dyn_cast<llvm::ConstantInt>(size);
  if (!n) return false;
  llvm::APInt off(bm.dl.getIndexTypeSizeInBits(ptr->getType()), 0);
  const llvm::Value* base = ptr->stripAndAccumulateConstantOffsets(bm.dl, off, /*AllowNonInbounds=*/true);
  const std::optional<std::uint64_t> bytes = own_object_bytes(bm, base);
  if (!bytes) return false;
  const std::uint64_t object = *bytes;
  const std::int64_t o = off.getSExtValue();
  return o >= 0 && static_cast<std::uint64_t>(o) <= object && n->getZExtValue() <= object - static_cast<std::uint64_t>(o);
}

// How an intrinsic whose accesses are checked touches memory: the one list
// of them (checks_intrinsic() and accesses_of() both read it).
struct intrinsic_access {
  enum { unchecked, transfer, set, masked, va_list } kind = unchecked;
  unsigned ptr_arg = 0;     // masked: the pointer (vector) operand
  unsigned mask_arg = 0;    // masked: the mask operand
  bool contiguous = true;   // masked: lanes at consecutive elements (load, store), not a gather or scatter
  unsigned va_lists = 0;    // va_list: operands 0.. are va_lists (the first written)
  bool write = false;       // masked: stores (store, scatter)
};

intrinsic_access access_of_intrinsic(llvm::Intrinsic::ID id) {
  using k = intrinsic_access;
  switch (id) {
    case llvm::Intrinsic::memcpy:
    case llvm::Intrinsic::memcpy_inline:
    case llvm::Intrinsic::memmove: return {k::transfer};
    case llvm::Intrinsic::memset:
    case llvm::Intrinsic::memset_inline: return {k::set};
    case llvm::Intrinsic::masked_load: return {k::masked, 0, 2, true};
    case llvm::Intrinsic::masked_store: return {k::masked, 1, 3, true, 0, true};
    case llvm::Intrinsic::masked_gather: return {k::masked, 0, 2, false};
    case llvm::Intrinsic::masked_scatter: return {k::masked, 1, 3, false, 0, true};
    case llvm::Intrinsic::vastart: return {k::va_list, 0, 0, true, 1};  // writes the va_list
    case llvm::Intrinsic::vacopy: return {k::va_list, 0, 0, true, 2};   // va_list to va_list
    default: return {};
  }
}

// The pointer operands and sizes of what `i` reads or writes, each marked
// as a read or a write.
void accesses_of(const bounds_module& bm, llvm::Instruction& i, llvm::SmallVectorImpl<access>& out,
                 llvm::SmallVectorImpl<lanes>& vectors) {
  auto bytes = [&](llvm::Type* t) -> llvm::Value* {
    return llvm::ConstantInt::get(bm.i64, bm.dl.getTypeStoreSize(t).getFixedValue());
  };
  auto n64 = [&](llvm::Value* v) -> llvm::Value* {
    llvm::IRBuilder<> b(&i);
    return b.CreateZExtOrTrunc(v, bm.i64);
  };
  constexpr bool read = false, write = true;
  if (auto* l = llvm::dyn_cast<llvm::LoadInst>(&i))
    return out.push_back({&i, l->getPointerOperand(), bytes(l->getType()), read});
  if (auto* s = llvm::dyn_cast<llvm::StoreInst>(&i))
    return out.push_back({&i, s->getPointerOperand(), bytes(s->getValueOperand()->getType()), write});
  if (auto* r = llvm::dyn_cast<llvm::AtomicRMWInst>(&i))
    return out.push_back({&i, r->getPointerOperand(), bytes(r->getValOperand()->getType()), write});
  if (auto* x = llvm::dyn_cast<llvm::AtomicCmpXchgInst>(&i))
    return out.push_back({&i, x->getPointerOperand(), bytes(x->getNewValOperand()->getType()), write});
  auto* call = llvm::dyn_cast<llvm::CallBase>(&i);
  if (!call) return;
  // A by-value argument is copied from its pointer at the call, whatever
  // the callee (module code, runtime API, libc, a pointer): a read of the
  // type's size that no load in the bitcode shows.
  for (unsigned k = 0; k < call->arg_size(); ++k)
    if (llvm::Type* t = call->getParamByValType(k))
      out.push_back(
          {&i, call->getArgOperand(k), llvm::ConstantInt::get(bm.i64, bm.dl.getTypeAllocSize(t).getFixedValue()), read});
  if (auto* ii = llvm::dyn_cast<llvm::IntrinsicInst>(call)) {
    const intrinsic_access how = access_of_intrinsic(ii->getIntrinsicID());
    auto arg = [&](unsigned k) { return ii->getArgOperand(k); };
    switch (how.kind) {
      case intrinsic_access::unchecked: return;  // touches no memory code can aim, or the policy refused it
      case intrinsic_access::transfer:           // dest, source, length
        out.push_back({&i, arg(0), n64(arg(2)), write});
        return out.push_back({&i, arg(1), n64(arg(2)), read});
      case intrinsic_access::set: return out.push_back({&i, arg(0), n64(arg(2)), write});  // dest, value, length
      case intrinsic_access::va_list:
        for (unsigned k = 0; k < how.va_lists; ++k)
          out.push_back({&i, arg(k), llvm::ConstantInt::get(bm.i64, bm.va_list_bytes), k == 0});
        return;
      case intrinsic_access::masked: break;
    }
    // Masked and vector memory operations (what the vectorizer emits):
    // every active lane, checked as a vector.
    llvm::Type* vt = how.ptr_arg == 0 ? ii->getType() : arg(0)->getType();
    auto* v = llvm::dyn_cast<llvm::FixedVectorType>(vt);
    if (!v) return;
    const std::uint64_t esz = bm.dl.getTypeStoreSize(v->getElementType()).getFixedValue();
    llvm::Value* ptrs = arg(how.ptr_arg);
    if (how.contiguous) {  // lane k at ptr + k * esz
      llvm::SmallVector<llvm::Constant*, 16> offsets;
      for (unsigned lane = 0; lane < v->getNumElements(); ++lane) offsets.push_back(llvm::ConstantInt::get(bm.i64, lane * esz));
      llvm::IRBuilder<> b(&i);
      ptrs = b.CreateGEP(b.getInt8Ty(), ptrs, llvm::ConstantVector::get(offsets));
    }
    vectors.push_back({&i, ptrs, arg(how.mask_arg), esz, how.write});
    return;
  }
  // Calls of the allowed libc functions that take pointers. The runtime API
  // (ferry_*) checks the pointers it is given itself (runtime/exec/abi.cpp).
  const llvm::Function* callee = call->getCalledFunction();
  if (!callee || !callee->isDeclaration() || callee->getName().starts_with("ferry_")) return;
  const llvm::StringRef name = callee->getName();
  auto arg = [&](unsigned k) { return call->getArgOperand(k); };
  if (name == "memcpy" || name == "memmove") {
    out.push_back({&i, arg(0), n64(arg(2)), write});
    out.push_back({&i, arg(1), n64(arg(2)), read});
  } else if (name == "memcmp" || name == "bcmp") {
    out.push_back({&i, arg(0), n64(arg(2)), read});
    out.push_back({&i, arg(1), n64(arg(2)), read});
  } else if (name == "memset" || name == "memchr") {
    out.push_back({&i, arg(0), n64(arg(2)), name == "memset"});
  } else if (name == "frexp") {
    out.push_back({&i, arg(1), llvm::ConstantInt::get(bm.i64, 4), write});
  } else if (name == "modf") {
    out.push_back({&i, arg(1), llvm::ConstantInt::get(bm.i64, 8), write});
  } else {
    // strlen, strcmp, strchr, ...: the first byte of each string (the
    // rest, up to its NUL, is read unchecked: docs/security.md).
    for (unsigned k = 0; k < call->arg_size(); ++k)
      if (arg(k)->getType()->isPointerTy()) out.push_back({&i, arg(k), llvm::ConstantInt::get(bm.i64, 1), read});
  }
}

// A function's region cache: up to kSlots (lo, span) pairs in registers,
// one per base object its accesses derive from (its underlying object: an
// argument, a pointer the runtime returned, a load) and per kind of access
// (its reads, its writes), so a loop over two arrays keeps both regions.
// The slot only chooses where to cache: every access is still compared
// with its own address. A write slot holds only regions ferry_bounds_write
// returned, so a region the call may only read never admits a write.
constexpr unsigned kSlots = 8;

// Every access of `f` as a call to ferry_bounds (a write:
// ferry_bounds_write), which returns only if the access lies inside a
// region of the call (contain_options::inline_checks false): one call per
// access, one per lane of a vector access.
void call_checks(const bounds_module& bm, llvm::ArrayRef<access> todo, llvm::ArrayRef<lanes> vectors) {
  for (const access& a : todo) {
    llvm::IRBuilder<> b(a.at);
    llvm::Value* addr = b.CreatePtrToInt(a.ptr, bm.i64);
    if (const auto o = own_object_of(bm, a.ptr))
      b.CreateCall(bm.outside, {addr, a.size, b.CreatePtrToInt(o->base, bm.i64), b.getInt64(o->bytes)});
    else
      b.CreateCall(miss_of(bm, a.write), {addr, a.size});
  }
  for (const lanes& l : vectors) {
    const unsigned n = llvm::cast<llvm::FixedVectorType>(l.ptrs->getType())->getNumElements();
    llvm::IRBuilder<> b(l.at);
    llvm::Value* addr = b.CreatePtrToInt(l.ptrs, llvm::FixedVectorType::get(bm.i64, n));
    for (unsigned lane = 0; lane < n; ++lane)  // an inactive lane asks for 0 bytes, always admitted
      b.CreateCall(miss_of(bm, l.write), {b.CreateExtractElement(addr, lane),
                             b.CreateSelect(b.CreateExtractElement(l.mask, lane), b.getInt64(l.bytes), b.getInt64(0))});
  }
}

// A loop left at its latch when `iv == end`, iv = {start,+,s} with a
// constant s, end loop-invariant: the form in which LLVM's runtime unroller
// leaves a loop of unknown trip count (s the unroll factor; a remainder loop
// before it takes the odd iterations). SCEV computes no count for |s| > 1,
// as it cannot see that s divides end - start. The latch runs
// (end - start) / s times before it leaves, if s divides that distance
// (exactly: unsigned, in iv's type); `remainder` is what the preheader
// checks to be zero before it trusts the count. Otherwise iv steps past end,
// wraps and runs until the loop's accesses leave their region, or its fuel
// runs out: the range check then refuses the loop before its first
// iteration instead.
struct equality_exit {
  const llvm::SCEV* trips;
  const llvm::SCEV* remainder;
};

std::optional<equality_exit> equality_exit_of(llvm::ScalarEvolution& se, const llvm::Loop& l, unsigned index_bits) {
  const auto* br = llvm::dyn_cast<llvm::BranchInst>(l.getLoopLatch()->getTerminator());
  const auto* cmp = br && br->isConditional() ? llvm::dyn_cast<llvm::ICmpInst>(br->getCondition()) : nullptr;
  if (!cmp || !cmp->isEquality()) return std::nullopt;
  const bool leaves_when_true = !l.contains(br->getSuccessor(0));
  if ((cmp->getPredicate() == llvm::ICmpInst::ICMP_EQ) != leaves_when_true) return std::nullopt;  // leaves when equal
  for (unsigned k = 0; k < 2; ++k) {
    llvm::Value* iv = cmp->getOperand(k);
    if (!iv->getType()->isIntegerTy(index_bits)) return std::nullopt;
    const auto* ar = llvm::dyn_cast<llvm::SCEVAddRecExpr>(se.getSCEV(iv));
    const llvm::SCEV* end = se.getSCEV(cmp->getOperand(1 - k));
    const auto* step = ar ? llvm::dyn_cast<llvm::SCEVConstant>(ar->getStepRecurrence(se)) : nullptr;
    if (!ar || ar->getLoop() != &l || !ar->isAffine() || !step || step->getAPInt().isZero() ||
        !se.isLoopInvariant(end, &l))
      continue;
    const bool up = step->getAPInt().isStrictlyPositive();
    const llvm::SCEV* distance = up ? se.getMinusSCEV(end, ar->getStart()) : se.getMinusSCEV(ar->getStart(), end);
    const llvm::SCEV* stride = se.getConstant(step->getAPInt().abs());
    return equality_exit{se.getUDivExpr(distance, stride), se.getURemExpr(distance, stride)};
  }
  return std::nullopt;
}

// Checks hoisted out of loops (the optimized tier: run after the IR
// pipeline, on loops in LLVM's canonical form). An access of `size` bytes
// whose address moves by a constant stride on every iteration of its
// innermost loop L (L left only at its latch, the access's block dominating
// the latch, L's trip count computable) touches the addresses from `lowest`
// to `highest`, a stride apart, once L is entered. L's preheader checks
// [lowest, highest + size) once instead of each access in turn (as the
// runtime checks LoopAccessAnalysis builds do).
// - Never more admitted: a range inside a region has every access inside
//   it, and regions only grow during a call.
// - A loop that would have failed at some iteration fails before its first
//   (with memory_fault, where it might first have run out of fuel).
// - A loop that strides over a gap between two regions, each access inside
//   one of them, is refused: the range is not inside one region.
// The accesses left to check one by one stay in `todo`, with the range
// checks (at the preheaders' ends) in place of the hoisted ones.
//
// L's trip count is SCEV's, or that of equality_exit() for the loops LLVM's
// unroller leaves, whose count SCEV cannot compute.
void hoist_loop_checks(const bounds_module& bm, llvm::Function& f, llvm::SmallVectorImpl<access>& todo) {
  llvm::DominatorTree dt(f);
  llvm::LoopInfo li(dt);
  if (li.empty()) return;
  llvm::TargetLibraryInfoImpl tlii(llvm::Triple(f.getParent()->getTargetTriple()));
  llvm::TargetLibraryInfo tli(tlii, &f);
  llvm::AssumptionCache ac(f);
  llvm::ScalarEvolution se(f, tli, ac, dt, li);
  // The IR pipeline leaves loops out of canonical form at its end: a loop
  // its unroller split off is entered from a block that also branches past
  // it (no preheader of its own). Canonical again, each has one.
  for (llvm::Loop* l : li) llvm::simplifyLoop(l, &dt, &li, &se, &ac, nullptr, /*PreserveLCSSA=*/false);
  llvm::SCEVExpander expander(se, bm.dl, "ferry.range");
  llvm::SmallVector<access, 32> kept;
  for (const access& a : todo) {
    auto keep = [&] { kept.push_back(a); };
    llvm::Loop* l = li.getLoopFor(a.at->getParent());
    const auto* size = llvm::dyn_cast<llvm::ConstantInt>(a.size);
    if (!l || !size || !a.ptr->getType()->isPointerTy()) {
      keep();
      continue;
    }
    llvm::BasicBlock* pre = l->getLoopPreheader();
    llvm::BasicBlock* latch = l->getLoopLatch();
    if (!pre || !latch || l->getExitingBlock() != latch || !dt.dominates(a.at->getParent(), latch)) {
      keep();
      continue;
    }
    const auto* ar = llvm::dyn_cast<llvm::SCEVAddRecExpr>(se.getSCEV(a.ptr));
    const auto* step = ar ? llvm::dyn_cast<llvm::SCEVConstant>(ar->getStepRecurrence(se)) : nullptr;
    const llvm::SCEV* trips = se.getBackedgeTakenCount(l);
    const llvm::SCEV* remainder = nullptr;  // must be zero for `trips` to hold
    if (llvm::isa<llvm::SCEVCouldNotCompute>(trips))
      if (const auto e = equality_exit_of(se, *l, bm.i64->getBitWidth())) {
        trips = e->trips;
        remainder = e->remainder;
      }
    if (!ar || ar->getLoop() != l || !ar->isAffine() || !step || step->getAPInt().isZero() ||
        llvm::isa<llvm::SCEVCouldNotCompute>(trips)) {
      keep();
      continue;
    }
    // The lowest address the loop touches and the highest (a negative
    // stride walks down from the first).
    const bool up = step->getAPInt().isStrictlyPositive();
    const llvm::SCEV* first = up ? ar->getStart() : ar->evaluateAtIteration(trips, se);
    const llvm::SCEV* last = up ? ar->evaluateAtIteration(trips, se) : ar->getStart();
    llvm::Instruction* at = pre->getTerminator();
    if (!se.isLoopInvariant(first, l) || !se.isLoopInvariant(last, l) || !expander.isSafeToExpandAt(first, at) ||
        !expander.isSafeToExpandAt(last, at) || (remainder && !expander.isSafeToExpandAt(remainder, at))) {
      keep();
      continue;
    }
    llvm::Value* lo = expander.expandCodeFor(first, a.ptr->getType(), at);
    llvm::Value* hi = expander.expandCodeFor(last, a.ptr->getType(), at);
    llvm::IRBuilder<> b(at);
    // From the first byte to the last access's end. Addresses that wrap
    // give a range that wraps, which no region holds: the check fails, as
    // the loop's own accesses would.
    llvm::Value* bytes = b.CreateAdd(b.CreateSub(b.CreatePtrToInt(hi, bm.i64), b.CreatePtrToInt(lo, bm.i64)), a.size);
    if (remainder) {  // a count that does not hold: every byte there is, which no region holds
      llvm::Value* exact = b.CreateIsNull(expander.expandCodeFor(remainder, bm.i64, at));
      bytes = b.CreateSelect(exact, bytes, b.getInt64(~std::uint64_t{0}));
    }
    kept.push_back({at, lo, bytes, a.write});
  }
  todo.assign(kept.begin(), kept.end());
}

std::uint64_t check_function(const bounds_module& bm, llvm::Function& f, bool inline_checks) {
  llvm::SmallVector<access, 32> todo;
  llvm::SmallVector<lanes, 4> vectors;
  for (llvm::Instruction& i : llvm::instructions(f)) accesses_of(bm, i, todo, vectors);
  llvm::erase_if(todo, [&](const access& a) { return statically_inside(bm, a.ptr, a.size); });
  if (todo.empty() && vectors.empty()) return 0;
  if (!inline_checks) {
    call_checks(bm, todo, vectors);
    return todo.size() + vectors.size();
  }
  hoist_loop_checks(bm, f, todo);

  llvm::IRBuilder<> eb(&*f.getEntryBlock().getFirstInsertionPt());
  // Two regions per slot, the last used first: a loop that alternates
  // between two arrays through one pointer table (a local and a fetched
  // partition's values) keeps both.
  struct slot {
    llvm::AllocaInst* lo;
    llvm::AllocaInst* span;
    llvm::AllocaInst* lo2;
    llvm::AllocaInst* span2;
  };
  llvm::SmallVector<slot, kSlots> slots;
  llvm::DenseMap<std::pair<const llvm::Value*, unsigned>, unsigned> slot_of;  // (base, write) to its slot
  auto slot_for = [&](llvm::Value* ptr, bool write) -> slot& {
    const llvm::Value* base = llvm::getUnderlyingObject(ptr);
    auto [it, fresh] = slot_of.try_emplace({base, write ? 1u : 0u}, static_cast<unsigned>(slot_of.size()));
    const unsigned k = std::min(it->second, kSlots - 1);
    while (slots.size() <= k) {
      // An empty region: lo 0, span 0 admits only 0 bytes at address 0.
      slot s{eb.CreateAlloca(bm.i64, nullptr, "ferry.lo"), eb.CreateAlloca(bm.i64, nullptr, "ferry.span"),
             eb.CreateAlloca(bm.i64, nullptr, "ferry.lo2"), eb.CreateAlloca(bm.i64, nullptr, "ferry.span2")};
      for (llvm::AllocaInst* v : {s.lo, s.span, s.lo2, s.span2}) eb.CreateStore(eb.getInt64(0), v);
      slots.push_back(s);
    }
    return slots[k];
  };

  // Inside iff lo <= addr and addr + size <= lo + span, written so that
  // nothing can wrap: off <= span and size <= span - off.
  auto within = [](llvm::IRBuilder<>& b, llvm::Value* addr, llvm::Value* size, llvm::Value* lo, llvm::Value* span) {
    llvm::Value* off = b.CreateSub(addr, lo);
    return b.CreateAnd(b.CreateICmpULE(off, span), b.CreateICmpULE(size, b.CreateSub(span, off)));
  };
  auto inside = [&](llvm::IRBuilder<>& b, llvm::Value* addr, llvm::Value* size, llvm::AllocaInst* lo_at,
                    llvm::AllocaInst* span_at) {
    return within(b, addr, size, b.CreateLoad(bm.i64, lo_at), b.CreateLoad(bm.i64, span_at));
  };
  const auto unlikely = llvm::MDBuilder(f.getContext()).createBranchWeights(1, 1u << 20);
  for (const access& a : todo) {
    llvm::IRBuilder<> b(a.at);
    llvm::Value* addr = b.CreatePtrToInt(a.ptr, bm.i64);
    if (const auto o = own_object_of(bm, a.ptr)) {
      // An access into a local array or a global of the module at an offset
      // known only at run time (a table of pointers on the stack, indexed by
      // a value read): compared with that object itself, a compare of the
      // offset with a constant, no region to cache; outside it, the call ends.
      llvm::Value* object = b.CreatePtrToInt(o->base, bm.i64);
      llvm::Value* in = nullptr;
      if (const auto* n = llvm::dyn_cast<llvm::ConstantInt>(a.size))  // one compare: off <= bytes - size
        in = n->getZExtValue() <= o->bytes
                 ? b.CreateICmpULE(b.CreateSub(addr, object), b.getInt64(o->bytes - n->getZExtValue()))
                 : b.getFalse();
      else
        in = within(b, addr, a.size, object, b.getInt64(o->bytes));
      llvm::Instruction* miss = llvm::SplitBlockAndInsertIfThen(b.CreateNot(in), a.at, false, unlikely);
      llvm::IRBuilder<>(miss).CreateCall(bm.outside, {addr, a.size, object, b.getInt64(o->bytes)});
      continue;
    }
    slot& s = slot_for(a.ptr, a.write);
    llvm::Instruction* second = llvm::SplitBlockAndInsertIfThen(b.CreateNot(inside(b, addr, a.size, s.lo, s.span)),
                                                                a.at, false, unlikely);
    // Not in the last region: try the other one, which becomes the last.
    llvm::IRBuilder<> sb(second);
    llvm::Value* in_second = inside(sb, addr, a.size, s.lo2, s.span2);
    llvm::Value* lo = sb.CreateLoad(bm.i64, s.lo);
    llvm::Value* span = sb.CreateLoad(bm.i64, s.span);
    sb.CreateStore(sb.CreateLoad(bm.i64, s.lo2), s.lo);
    sb.CreateStore(sb.CreateLoad(bm.i64, s.span2), s.span);
    sb.CreateStore(lo, s.lo2);
    sb.CreateStore(span, s.span2);
    llvm::Instruction* miss = llvm::SplitBlockAndInsertIfThen(sb.CreateNot(in_second), second, false, unlikely);
    llvm::IRBuilder<> mb(miss);
    // Returns only if the access lies inside a region of the call; that region goes into the slot.
    llvm::Value* r = mb.CreateCall(miss_of(bm, a.write), {addr, a.size});
    mb.CreateStore(mb.CreateExtractValue(r, 0), s.lo);
    mb.CreateStore(mb.CreateExtractValue(r, 1), s.span);
  }
  for (const lanes& l : vectors) {
    // The same test on every lane at once; any active lane outside the
    // cached region sends every lane to ferry_bounds (an inactive one asks
    // for 0 bytes, always admitted).
    slot& s = slot_for(l.ptrs, l.write);
    const unsigned n = llvm::cast<llvm::FixedVectorType>(l.ptrs->getType())->getNumElements();
    llvm::IRBuilder<> b(l.at);
    llvm::Value* addr = b.CreatePtrToInt(l.ptrs, llvm::FixedVectorType::get(bm.i64, n));
    llvm::Value* lo = b.CreateVectorSplat(n, b.CreateLoad(bm.i64, s.lo));
    llvm::Value* span = b.CreateVectorSplat(n, b.CreateLoad(bm.i64, s.span));
    llvm::Value* off = b.CreateSub(addr, lo);
    llvm::Value* inside = b.CreateAnd(b.CreateICmpULE(off, span),
                                      b.CreateICmpULE(b.CreateVectorSplat(n, b.getInt64(l.bytes)), b.CreateSub(span, off)));
    llvm::Value* all = b.CreateAndReduce(b.CreateOr(inside, b.CreateNot(l.mask)));
    llvm::Instruction* then = llvm::SplitBlockAndInsertIfThen(b.CreateNot(all), l.at, false, unlikely);
    llvm::IRBuilder<> mb(then);
    for (unsigned lane = 0; lane < n; ++lane) {
      llvm::Value* on = mb.CreateExtractElement(l.mask, lane);
      llvm::Value* r = mb.CreateCall(miss_of(bm, l.write), {mb.CreateExtractElement(addr, lane),
                                                             mb.CreateSelect(on, mb.getInt64(l.bytes), mb.getInt64(0))});
      // The slot keeps the region of the last active lane.
      mb.CreateStore(mb.CreateSelect(on, mb.CreateExtractValue(r, 0), mb.CreateLoad(bm.i64, s.lo)), s.lo);
      mb.CreateStore(mb.CreateSelect(on, mb.CreateExtractValue(r, 1), mb.CreateLoad(bm.i64, s.span)), s.span);
    }
  }
  llvm::SmallVector<llvm::AllocaInst*, 2 * kSlots> promote;
  for (const slot& s : slots) promote.append({s.lo, s.span});
  llvm::DominatorTree dt(f);
  llvm::PromoteMemToReg(promote, dt);
  return todo.size() + vectors.size();
}

// ---- Stack canaries --------------------------------------------------------
//
// Written here rather than asked of LLVM (`sspstrong`): LLVM's x86-64 Linux
// canary is read from the thread's control block (%fs:0x28), a load the
// fast instruction selector cannot emit, so every frame's entry and return
// blocks went through SelectionDAG, about 0.3 ms of a first call's compile
// (docs/jit.md). The same `llvm.stackprotector` intrinsic LLVM uses marks
// the slot, so the frame layout puts it between the locals and the saved
// registers and return address; the guard is a variable of the runtime
// (kStackGuardSymbol), read with a plain load.

// Could an overrun start from a local of `f`: an array, or a local whose
// address is used otherwise than to load or store through it directly?
// (Roughly clang's -fstack-protector-strong rule, erring on the side of a
// canary.)
bool has_exposed_local(const llvm::Function& f) {
  for (const llvm::Instruction& i : llvm::instructions(f)) {
    const auto* a = llvm::dyn_cast<llvm::AllocaInst>(&i);
    if (!a) continue;
    if (a->isArrayAllocation() || a->getAllocatedType()->isArrayTy()) return true;
    for (const llvm::Use& u : a->uses()) {
      const llvm::User* user = u.getUser();
      if (llvm::isa<llvm::LoadInst>(user)) continue;
      if (const auto* st = llvm::dyn_cast<llvm::StoreInst>(user); st && st->getPointerOperand() == a) continue;
      if (const auto* ii = llvm::dyn_cast<llvm::IntrinsicInst>(user); ii && ii->isLifetimeStartOrEnd()) continue;
      return true;
    }
  }
  return false;
}

// Give `f` a canary: at entry the guard's value goes into a slot the frame
// layout puts above every local; before each return (and before a musttail
// call, which must stay last) the slot is compared with the guard, and a
// difference calls `smashed`, which does not return.
void protect_frame(llvm::Function& f, llvm::GlobalVariable& guard, llvm::FunctionCallee smashed) {
  auto& ctx = f.getContext();
  auto* ptr = llvm::PointerType::get(ctx, 0);
  llvm::IRBuilder<> b(&*f.getEntryBlock().getFirstInsertionPt());
  auto* slot = b.CreateAlloca(ptr, nullptr, "ferry.canary");
  b.CreateIntrinsic(llvm::Intrinsic::stackprotector, {}, {b.CreateLoad(ptr, &guard, /*isVolatile=*/true), slot});

  std::vector<llvm::Instruction*> exits;
  for (llvm::BasicBlock& bb : f)
    if (auto* ret = llvm::dyn_cast<llvm::ReturnInst>(bb.getTerminator())) {
      llvm::Instruction* exit = ret;
      if (auto* call = llvm::dyn_cast_or_null<llvm::CallInst>(ret->getPrevNode()); call && call->isMustTailCall())
        exit = call;
      exits.push_back(exit);
    }
  if (exits.empty()) return;
  auto* fail = llvm::BasicBlock::Create(ctx, "ferry.canary.changed", &f);
  llvm::IRBuilder<> fb(fail);
  fb.CreateCall(smashed);
  fb.CreateUnreachable();
  const auto unlikely = llvm::MDBuilder(ctx).createBranchWeights(1, 1u << 20);
  for (llvm::Instruction* exit : exits) {
    llvm::BasicBlock* bb = exit->getParent();
    llvm::BasicBlock* rest = bb->splitBasicBlock(exit, "ferry.canary.kept");
    bb->getTerminator()->eraseFromParent();
    llvm::IRBuilder<> cb(bb);
    auto* now = cb.CreateLoad(ptr, &guard, /*isVolatile=*/true);
    auto* kept = cb.CreateLoad(ptr, slot, /*isVolatile=*/true);
    cb.CreateCondBr(cb.CreateICmpEQ(now, kept), rest, fail, unlikely);
  }
}

// Forward-edge control-flow integrity: a call through a pointer may only go
// to a function of this module whose address the module takes (what a C
// function pointer or a C++ vtable can legitimately hold); any other target
// — a forged address, a function of another code object, the runtime, libc,
// the middle of a function — goes to `ferry_bad_callee`, which ends the
// call with memory_fault before the jump. A constant address is a pointer
// too (`call inttoptr (i64 ...)`); inline asm is refused by the policy.
// Returns the number of calls checked.
std::uint64_t check_indirect_calls(llvm::Module& m, llvm::FunctionCallee bad_callee) {
  llvm::SmallVector<llvm::Function*, 16> targets;
  for (llvm::Function& f : m.functions())
    if (!f.isDeclaration() && f.hasAddressTaken()) targets.push_back(&f);
  llvm::SmallVector<llvm::CallBase*, 16> calls;
  for (llvm::Function& f : m.functions())
    for (llvm::Instruction& i : llvm::instructions(f))
      if (auto* call = llvm::dyn_cast<llvm::CallBase>(&i)) {
        llvm::Value* callee = call->getCalledOperand();
        if (!llvm::isa<llvm::InlineAsm>(callee) && !llvm::isa<llvm::Function>(callee->stripPointerCastsAndAliases()))
          calls.push_back(call);
      }
  auto* i64 = llvm::Type::getInt64Ty(m.getContext());
  const auto unlikely = llvm::MDBuilder(m.getContext()).createBranchWeights(1, 1u << 20);
  for (llvm::CallBase* call : calls) {
    llvm::IRBuilder<> b(call);
    llvm::Value* callee = call->getCalledOperand();
    llvm::Value* known = b.getFalse();
    for (llvm::Function* t : targets) known = b.CreateOr(known, b.CreateICmpEQ(callee, t));
    llvm::Instruction* bad = llvm::SplitBlockAndInsertIfThen(b.CreateNot(known), call, false, unlikely);
    llvm::IRBuilder<> bb(bad);
    bb.CreateCall(bad_callee, {bb.CreatePtrToInt(callee, i64)});  // returns only outside a call
  }
  return calls.size();
}

// The module's own globals as a table the slow path searches: their
// addresses are known only once the code is linked.
llvm::Constant* module_regions(llvm::Module& m, llvm::IntegerType* i64) {
  auto& ctx = m.getContext();
  auto* ptr = llvm::PointerType::get(ctx, 0);
  auto* entry = llvm::StructType::get(ctx, {ptr, i64});
  std::vector<llvm::Constant*> rows;
  for (llvm::GlobalVariable& g : m.globals()) {
    if (g.isDeclarationForLinker() || g.getName().starts_with("llvm.")) continue;
    const std::uint64_t size = m.getDataLayout().getTypeAllocSize(g.getValueType()).getFixedValue();
    rows.push_back(llvm::ConstantStruct::get(entry, {&g, llvm::ConstantInt::get(i64, size)}));
  }
  auto* rows_type = llvm::ArrayType::get(entry, rows.size());
  auto* init = llvm::ConstantStruct::getAnon({llvm::ConstantInt::get(i64, rows.size()), llvm::ConstantArray::get(rows_type, rows)});
  return new llvm::GlobalVariable(m, init->getType(), true, llvm::GlobalValue::PrivateLinkage, init, "ferry.bounds.regions");
}

// The entry tells the runtime where its frame begins (the call's stack
// region is the thread's stack below it: the runtime's frames above, with
// the call's own state, are out of reach) and where the module's globals
// are.
void mark_entry(llvm::Module& m, llvm::Function& entry, llvm::Constant* regions) {
  auto& ctx = m.getContext();
  auto* ptr = llvm::PointerType::get(ctx, 0);
  auto hook =
      m.getOrInsertFunction("ferry_bounds_enter", llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptr, ptr}, false));
  llvm::IRBuilder<> b(&*entry.getEntryBlock().getFirstInsertionPt());
  llvm::Value* frame = b.CreateIntrinsic(llvm::Intrinsic::frameaddress, {ptr}, {b.getInt32(0)});
  b.CreateCall(hook, {frame, regions});
}

}  // namespace

void* stack_guard_address() {
  static std::uintptr_t guard = [] {
    std::random_device random;
    const std::uintptr_t g = (std::uintptr_t{random()} << 32) ^ random();
    return g & ~std::uintptr_t{0xff};
  }();
  return &guard;
}

bool checks_intrinsic(llvm::Intrinsic::ID id) { return access_of_intrinsic(id).kind != intrinsic_access::unchecked; }

std::uint64_t contain_module(llvm::Module& m, const contain_options& o) {
  auto& ctx = m.getContext();
  auto* i64 = llvm::Type::getInt64Ty(ctx);
  llvm::FunctionCallee hook;
  if (o.meter) hook = m.getOrInsertFunction("ferry_fuel", llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {i64}, false));
  std::optional<bounds_module> bm;
  llvm::GlobalVariable* guard = nullptr;
  llvm::FunctionCallee smashed;
  if (o.bounds) {
    auto* ptr = llvm::PointerType::get(ctx, 0);
    guard = llvm::cast<llvm::GlobalVariable>(m.getOrInsertGlobal(kStackGuardSymbol, ptr));
    smashed = m.getOrInsertFunction(kStackSmashedSymbol, llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), false));
    if (auto* f = llvm::dyn_cast<llvm::Function>(smashed.getCallee())) f->setDoesNotReturn();
    auto* region = llvm::StructType::get(ctx, {i64, i64});
    bm.emplace(bounds_module{
        m.getDataLayout(), m.getOrInsertFunction("ferry_bounds", llvm::FunctionType::get(region, {i64, i64}, false)),
        m.getOrInsertFunction("ferry_bounds_write", llvm::FunctionType::get(region, {i64, i64}, false)),
        m.getOrInsertFunction("ferry_bounds_object",
                              llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {i64, i64, i64, i64}, false)),
        i64, va_list_bytes(m)});
  }
  std::uint64_t checks = 0;
  for (llvm::Function& f : m.functions()) {
    if (f.isDeclaration()) continue;
    f.addFnAttr("probe-stack", "inline-asm");
    if (o.meter) meter_function(f, hook);
    if (bm) {
      checks += check_function(*bm, f, o.inline_checks);
      // Stack canaries in every frame with arrays or address-taken locals:
      // an access through a pointer not traced to its local is checked
      // against the call's whole stack, so an overrun through it would
      // otherwise reach the saved return address unnoticed.
      // Ours replace LLVM's, which the sender may have asked for.
      for (auto kind : {llvm::Attribute::StackProtect, llvm::Attribute::StackProtectStrong,
                        llvm::Attribute::StackProtectReq})
        f.removeFnAttr(kind);
      if (has_exposed_local(f)) protect_frame(f, *guard, smashed);
    }
  }
  if (bm) {
    checks += check_indirect_calls(
        m, m.getOrInsertFunction("ferry_bad_callee", llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {i64}, false)));
    if (llvm::Function* entry = m.getFunction(o.entry_symbol); entry && !entry->isDeclaration())
      mark_entry(m, *entry, module_regions(m, i64));
  }
  return checks;
}

}  // namespace ferry::jitd
