; Hostile under bounds checks: moves the stack pointer to an address from
; its arguments, where the next call would write (the policy refuses it).
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

declare void @llvm.stackrestore.p0(ptr)

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %to = load ptr, ptr %args, align 8
  call void @llvm.stackrestore.p0(ptr %to)
  ret i32 0
}
