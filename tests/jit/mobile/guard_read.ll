; Hostile under bounds checks: reads the stack canaries' guard by its name
; (contained code's canaries are compared with it: jit/contain.hpp). The
; policy refuses the name, as it is on no allow-list mobile code sees.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

@__stack_chk_guard = external global i64

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %guard = load i64, ptr @__stack_chk_guard, align 8
  store i64 %guard, ptr %result, align 8
  ret i32 0
}
