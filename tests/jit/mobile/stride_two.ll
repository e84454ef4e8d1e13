; Hostile under bounds checks unless its arguments are right: writes 7 to
; every other 64-bit word from word `start` until the index equals `end`
; ({ ptr address; u64 start; u64 end }), as LLVM's runtime unroller leaves a
; loop: a stride of two, left when the index reaches its end, entered from
; a block that also branches past it. With end - start odd the index steps
; past its end and the loop writes on through memory until something stops
; it: the optimized tier's hoisted check must refuse it before its first
; write (jit/contain.cpp, equality_exit), not trust the count (end - start) / 2.
; Result: the number of words written.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
entry:
  %p = load ptr, ptr %args, align 8
  %start.at = getelementptr inbounds i64, ptr %args, i64 1
  %start = load i64, ptr %start.at, align 8
  %end.at = getelementptr inbounds i64, ptr %args, i64 2
  %end = load i64, ptr %end.at, align 8
  %empty = icmp eq i64 %start, %end
  br i1 %empty, label %exit, label %loop

loop:
  %i = phi i64 [ %start, %entry ], [ %next, %loop ]
  %n = phi i64 [ 0, %entry ], [ %n.next, %loop ]
  %at = getelementptr i64, ptr %p, i64 %i
  store volatile i64 7, ptr %at, align 8
  %n.next = add i64 %n, 1
  %next = add i64 %i, 2
  %done = icmp eq i64 %next, %end
  br i1 %done, label %exit, label %loop

exit:
  %written = phi i64 [ 0, %entry ], [ %n.next, %loop ]
  store i64 %written, ptr %result, align 8
  ret i32 0
}
