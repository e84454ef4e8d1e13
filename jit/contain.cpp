#include "contain.hpp"

#include <llvm/Analysis/CFG.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Transforms/Utils/BasicBlockUtils.h>
#include <llvm/Transforms/Utils/PromoteMemToReg.h>

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

}  // namespace

void contain_module(llvm::Module& m, bool meter) {
  auto& ctx = m.getContext();
  llvm::FunctionCallee hook;
  if (meter)
    hook = m.getOrInsertFunction("ferry_fuel", llvm::FunctionType::get(llvm::Type::getVoidTy(ctx),
                                                                       {llvm::Type::getInt64Ty(ctx)}, false));
  for (llvm::Function& f : m.functions()) {
    if (f.isDeclaration()) continue;
    f.addFnAttr("probe-stack", "inline-asm");
    if (meter) meter_function(f, hook);
  }
}

}  // namespace ferry::jitd
