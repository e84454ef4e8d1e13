; Hostile under bounds checks: copies from its context pointer with the
; element-wise atomic memcpy, an intrinsic the checks do not follow (the
; policy refuses it).
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

declare void @llvm.memcpy.element.unordered.atomic.p0.p0.i64(ptr, ptr, i64, i32)

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  call void @llvm.memcpy.element.unordered.atomic.p0.p0.i64(ptr align 8 %result, ptr align 8 %cx, i64 8, i32 8)
  ret i32 0
}
