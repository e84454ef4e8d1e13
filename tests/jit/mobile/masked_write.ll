; Writes through the vector forms the vectorizer emits: a masked store of
; four words at `dst` (lanes 0, 1 and 3 on; lane 2 off), then a scatter of
; the same words to `dst`[4..7] (all lanes on). Arguments: { u64 dst };
; result: 0. Under bounds checks each active lane is a write, admitted
; only where the call may write.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

declare void @llvm.masked.store.v4i64.p0(<4 x i64>, ptr, i32, <4 x i1>)
declare void @llvm.masked.scatter.v4i64.v4p0(<4 x i64>, <4 x ptr>, i32, <4 x i1>)

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %bits = load i64, ptr %args, align 8
  %dst = inttoptr i64 %bits to ptr
  call void @llvm.masked.store.v4i64.p0(<4 x i64> <i64 1, i64 2, i64 3, i64 4>, ptr %dst, i32 8, <4 x i1> <i1 true, i1 true, i1 false, i1 true>)
  %hi = getelementptr i64, ptr %dst, i64 4
  %at = getelementptr i64, ptr %hi, <4 x i64> <i64 0, i64 1, i64 2, i64 3>
  call void @llvm.masked.scatter.v4i64.v4p0(<4 x i64> <i64 5, i64 6, i64 7, i64 8>, <4 x ptr> %at, i32 8, <4 x i1> <i1 true, i1 true, i1 true, i1 true>)
  store i64 0, ptr %result, align 8
  ret i32 0
}
