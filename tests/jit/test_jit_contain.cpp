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
  int in_loops = 0;   // calls to ferry_bounds or ferry_bounds_write inside a loop
  int outside = 0;    // before a loop or in straight-line code
  int cached_in_loops = 0;  // phis of a region cached in registers (ferry.lo*) inside a loop
  int object_in_loops = 0;  // calls to ferry_bounds_object inside a loop (an access into a local or global)
  int writes = 0;           // of the calls to ferry_bounds*, those to ferry_bounds_write (a write's check)
};

// Contains `ir`'s function @f as the optimized tier does (inline checks,
// fuel if `meter`) and says where its calls to ferry_bounds (and
// ferry_bounds_write) went.
checks_placed contain(const std::string& ir, bool meter = false) {
  llvm::LLVMContext ctx;
  llvm::SMDiagnostic err;
  auto m = llvm::parseAssemblyString(ir, err, ctx);
  REQUIRE_MESSAGE(m, err.getMessage().str());
  jitd::contain_options o;
  o.meter = meter;
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
    for (llvm::Instruction& i : b) {
      const auto* call = llvm::dyn_cast<llvm::CallInst>(&i);
      const llvm::Function* callee = call ? call->getCalledFunction() : nullptr;
      if (callee && (callee->getName() == "ferry_bounds" || callee->getName() == "ferry_bounds_write"))
        ++(li.getLoopFor(&b) ? placed.in_loops : placed.outside);
      if (callee && callee->getName() == "ferry_bounds_write") ++placed.writes;
      if (callee && callee->getName() == "ferry_bounds_object" && li.getLoopFor(&b)) ++placed.object_in_loops;
      if (llvm::isa<llvm::PHINode>(i) && i.getName().starts_with("ferry.lo") && li.getLoopFor(&b))
        ++placed.cached_in_loops;
    }
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

// for (i = 0; i < n; ++i) sum += ++p[i]: a read and a write of each word
// through one pointer.
const std::string kReadModifyWrite = counted_loop("", R"(
loop:
  %i = phi i64 [ 0, %pre ], [ %next, %loop ]
  %acc = phi i64 [ 0, %pre ], [ %sum, %loop ]
  %at = getelementptr inbounds i64, ptr %p, i64 %i
  %v = load i64, ptr %at
  %w = add i64 %v, 1
  store i64 %w, ptr %at
  %sum = add i64 %acc, %w
  %next = add nuw i64 %i, 1
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %done
)");

// The same loop as kEveryIteration, left early when a word equals %stop: two exits.
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

// for (i = 0; i < n; ++i) sum += p[i], as LLVM's runtime unroller leaves
// it: p[0] alone when n is odd, then two reads an iteration until the index
// equals n, the loop entered from a block that also branches past it.
const std::string kUnrolled = R"(
define i64 @f(ptr %p, i64 %n) {
entry:
  %odd = trunc i64 %n to i1
  br i1 %odd, label %first, label %rest
first:
  %v0 = load i64, ptr %p
  br label %rest
rest:
  %start = phi i64 [ 1, %first ], [ 0, %entry ]
  %acc0 = phi i64 [ %v0, %first ], [ 0, %entry ]
  %none = icmp eq i64 %start, %n
  br i1 %none, label %exit, label %loop
loop:
  %i = phi i64 [ %start, %rest ], [ %next, %loop ]
  %acc = phi i64 [ %acc0, %rest ], [ %sum2, %loop ]
  %a = getelementptr inbounds i64, ptr %p, i64 %i
  %v = load i64, ptr %a
  %sum = add i64 %acc, %v
  %i1 = add nuw i64 %i, 1
  %b = getelementptr inbounds i64, ptr %p, i64 %i1
  %w = load i64, ptr %b
  %sum2 = add i64 %sum, %w
  %next = add nuw i64 %i, 2
  %end = icmp eq i64 %next, %n
  br i1 %end, label %exit, label %loop
exit:
  %r = phi i64 [ %acc0, %rest ], [ %sum2, %loop ]
  ret i64 %r
}
)";

// sum += t[p[i]] with t a local table of 16 words: the table's index is
// read from memory.
const std::string kLocalTable = R"(
define i64 @f(ptr %p, i64 %n) {
entry:
  %t = alloca [16 x i64]
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %exit, label %pre
pre:
  br label %loop
loop:
  %i = phi i64 [ 0, %pre ], [ %next, %loop ]
  %acc = phi i64 [ 0, %pre ], [ %sum, %loop ]
  %at = getelementptr inbounds i64, ptr %p, i64 %i
  %q = load i64, ptr %at
  %slot = getelementptr inbounds [16 x i64], ptr %t, i64 0, i64 %q
  %v = load i64, ptr %slot
  %sum = add i64 %acc, %v
  %next = add nuw i64 %i, 1
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %exit
exit:
  %r = phi i64 [ 0, %entry ], [ %sum, %loop ]
  ret i64 %r
}
)";

}  // namespace

TEST_CASE("containment: a loop that reads on every iteration, up or down, is checked once, before it") {
  for (const std::string* ir : {&kEveryIteration, &kBackwards}) {
    CAPTURE(*ir);
    const auto placed = contain(*ir);
    CHECK(placed.in_loops == 0);
    CHECK(placed.outside == 1);
  }
}

TEST_CASE("containment: a loop that reads and writes each word through one pointer checks the read and the write "
          "once each, before it") {
  // A write is checked against the regions the call may write
  // (ferry_bounds_write), a read against all it may read: one range check
  // of each kind, each with a slot of its own.
  const auto placed = contain(kReadModifyWrite);
  CHECK(placed.in_loops == 0);
  CHECK(placed.outside == 2);
  CHECK(placed.writes == 1);
}

TEST_CASE("containment: loops that may leave early or read on some iterations keep a check per access") {
  for (const std::string* ir : {&kEarlyExit, &kSomeIterations}) {
    CAPTURE(*ir);
    const auto placed = contain(*ir);
    CHECK(placed.in_loops == 1);
    CHECK(placed.outside == 0);
  }
}

TEST_CASE("containment: a loop in the unroller's form (stride 2, left when its index reaches the end) is checked before it") {
  // Metered, as nodes run by default: the fuel call in the loop may not
  // return, and SCEV then computes no trip count for it; contain.cpp's
  // equality_exit does, with the remainder the preheader checks (what that
  // refuses at run time: test_jit_policy, "a loop the unroller's form would
  // trust ..."). The loop has no preheader of its own until containment
  // makes one.
  const auto placed = contain(kUnrolled, /*meter=*/true);
  CHECK(placed.in_loops == 0);
  CHECK(placed.outside == 3);  // p[0], and one range check for each of the loop's two reads
}

TEST_CASE("containment: a local table read at an index from memory is compared with the table, not a cached region") {
  // p[i] is checked before the loop; t[p[i]] in it, against t's own 128
  // bytes: a compare with a constant, no region kept in registers across
  // the loop, and ferry_bounds_object (which ends the call) when the index
  // is outside the table.
  const auto placed = contain(kLocalTable);
  CHECK(placed.outside == 1);
  CHECK(placed.in_loops == 0);
  CHECK(placed.object_in_loops == 1);
  CHECK(placed.cached_in_loops == 0);
}
