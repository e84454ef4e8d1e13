// contain_module on small IR modules, where the test can see where the
// bounds checks went: a loop whose every iteration reads the next (or the
// previous) word has its check hoisted into its preheader (one range check
// per entry into the loop), and loops that may leave early or read only on
// some iterations keep a check per access (jit/contain.cpp,
// hoist_loop_checks). What the checks admit and refuse at run time:
// test_jit_policy, "a loop's hoisted check ...".
#include <string>

#include <llvm/Analysis/LoopInfo.h>
#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include "contain.hpp"
#include "test_util.hpp"

using namespace ferry;

namespace {

struct checks_placed {
  int in_loops = 0;   // calls to ferry_bounds inside a loop
  int outside = 0;    // before a loop or in straight-line code
};

// Contains `ir`'s function @f as the optimized tier does (inline checks, no
// fuel) and says where its calls to ferry_bounds went.
checks_placed contain(const std::string& ir) {
  llvm::LLVMContext ctx;
  llvm::SMDiagnostic err;
  auto m = llvm::parseAssemblyString(ir, err, ctx);
  REQUIRE_MESSAGE(m, err.getMessage().str());
  jitd::contain_options o;
  o.meter = false;
  o.inline_checks = true;
  o.entry_symbol = "f";
  jitd::contain_module(*m, o);
  std::string why;
  llvm::raw_string_ostream os(why);
  REQUIRE_MESSAGE(!llvm::verifyModule(*m, &os), why);
  llvm::Function& f = *m->getFunction("f");
  llvm::DominatorTree dt(f);
  llvm::LoopInfo li(dt);
  checks_placed placed;
  for (llvm::BasicBlock& b : f)
    for (llvm::Instruction& i : b)
      if (auto* call = llvm::dyn_cast<llvm::CallInst>(&i);
          call && call->getCalledFunction() && call->getCalledFunction()->getName() == "ferry_bounds")
        ++(li.getLoopFor(&b) ? placed.in_loops : placed.outside);
  return placed;
}

// @f(ptr %p, i64 %n`params`) as LLVM's pipeline leaves a counted loop: a
// guard that skips the loop when %n is 0, a preheader, the loop's `blocks`
// (from %loop; they leave to %done with the sum in %sum) and the exit.
std::string counted_loop(const std::string& params, const std::string& blocks) {
  return "define i64 @f(ptr %p, i64 %n" + params + ") {\n"
         "entry:\n"
         "  %empty = icmp eq i64 %n, 0\n"
         "  br i1 %empty, label %exit, label %pre\n"
         "pre:\n"
         "  br label %loop\n" +
         blocks +
         "done:\n"
         "  br label %exit\n"
         "exit:\n"
         "  %r = phi i64 [ 0, %entry ], [ %sum, %done ]\n"
         "  ret i64 %r\n"
         "}\n";
}

// for (i = 0; i < n; ++i) sum += p[i]
const std::string kEveryIteration = counted_loop("", R"(
loop:
  %i = phi i64 [ 0, %pre ], [ %next, %loop ]
  %acc = phi i64 [ 0, %pre ], [ %sum, %loop ]
  %at = getelementptr inbounds i64, ptr %p, i64 %i
  %v = load i64, ptr %at
  %sum = add i64 %acc, %v
  %next = add nuw i64 %i, 1
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %done
)");

// The same loop, left early when a word equals %stop: two exits.
const std::string kEarlyExit = counted_loop(", i64 %stop", R"(
loop:
  %i = phi i64 [ 0, %pre ], [ %next, %latch ]
  %acc = phi i64 [ 0, %pre ], [ %added, %latch ]
  %at = getelementptr inbounds i64, ptr %p, i64 %i
  %v = load i64, ptr %at
  %found = icmp eq i64 %v, %stop
  br i1 %found, label %left, label %latch
latch:
  %added = add i64 %acc, %v
  %next = add nuw i64 %i, 1
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %left
left:
  %sum = phi i64 [ %acc, %loop ], [ %added, %latch ]
  br label %done
)");

// A read on odd iterations only: its block does not dominate the latch.
const std::string kSomeIterations = counted_loop("", R"(
loop:
  %i = phi i64 [ 0, %pre ], [ %next, %latch ]
  %acc = phi i64 [ 0, %pre ], [ %sum, %latch ]
  %odd = trunc i64 %i to i1
  br i1 %odd, label %read, label %latch
read:
  %at = getelementptr inbounds i64, ptr %p, i64 %i
  %v = load i64, ptr %at
  br label %latch
latch:
  %got = phi i64 [ 0, %loop ], [ %v, %read ]
  %sum = add i64 %acc, %got
  %next = add nuw i64 %i, 1
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %done
)");

// Backwards from p[n - 1] to p[0]: a negative stride.
const std::string kBackwards = counted_loop("", R"(
loop:
  %i = phi i64 [ %n, %pre ], [ %prev, %loop ]
  %acc = phi i64 [ 0, %pre ], [ %sum, %loop ]
  %prev = add i64 %i, -1
  %at = getelementptr inbounds i64, ptr %p, i64 %prev
  %v = load i64, ptr %at
  %sum = add i64 %acc, %v
  %more = icmp ne i64 %prev, 0
  br i1 %more, label %loop, label %done
)");

}  // namespace

TEST_CASE("containment: a loop that reads on every iteration, up or down, is checked once, before it") {
  for (const std::string* ir : {&kEveryIteration, &kBackwards}) {
    CAPTURE(*ir);
    const auto placed = contain(*ir);
    CHECK(placed.in_loops == 0);
    CHECK(placed.outside == 1);
  }
}

TEST_CASE("containment: loops that may leave early or read on some iterations keep a check per access") {
  for (const std::string* ir : {&kEarlyExit, &kSomeIterations}) {
    CAPTURE(*ir);
    const auto placed = contain(*ir);
    CHECK(placed.in_loops == 1);
    CHECK(placed.outside == 0);
  }
}
