; Hostile under bounds checks: reads through an x86 segment address space
; (257: %fs, the thread's TLS block; 40 is where the stack canary lives).
; A check would compare the offset, not the address read (the policy refuses
; pointers outside address space 0).
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %canary = load i64, ptr addrspace(257) inttoptr (i64 40 to ptr addrspace(257)), align 8
  store i64 %canary, ptr %result, align 8
  ret i32 0
}
