; Hostile under bounds checks: a va_arg instruction reads through the
; pointers its va_list holds, which plain stores can forge (the policy
; refuses it; clang never emits one for x86-64 or aarch64).
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define i64 @ferry_test_first(i32 %n, ...) {
  %list = alloca [24 x i8], align 16
  call void @llvm.va_start.p0(ptr %list)
  %v = va_arg ptr %list, i64
  call void @llvm.va_end.p0(ptr %list)
  ret i64 %v
}

declare void @llvm.va_start.p0(ptr)
declare void @llvm.va_end.p0(ptr)

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %v = call i64 (i32, ...) @ferry_test_first(i32 1, i64 7)
  store i64 %v, ptr %result, align 8
  ret i32 0
}
