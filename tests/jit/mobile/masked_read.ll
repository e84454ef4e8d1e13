; Hostile under bounds checks: reads the call's context (the runtime's state
; of the call, which the call may not read) with a masked vector load, the
; form the vectorizer emits for a conditional loop. The checks must cover
; every active lane of it.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

declare <4 x i64> @llvm.masked.load.v4i64.p0(ptr, i32, <4 x i1>, <4 x i64>)
declare i64 @llvm.vector.reduce.add.v4i64(<4 x i64>)

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %words = call <4 x i64> @llvm.masked.load.v4i64.p0(ptr %cx, i32 8, <4 x i1> <i1 true, i1 true, i1 true, i1 true>, <4 x i64> zeroinitializer)
  %sum = call i64 @llvm.vector.reduce.add.v4i64(<4 x i64> %words)
  store i64 %sum, ptr %result, align 8
  ret i32 0
}
