; Hostile under bounds checks: passes its context pointer (the runtime's
; state of the call, which the call may not read) by value to a helper. No
; load in the bitcode reads it: the copy the call makes for a byval
; argument does, so the checks must cover that copy.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define i64 @ferry_test_sum_words(ptr byval([8 x i64]) align 8 %words) noinline {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %sum = phi i64 [ 0, %entry ], [ %sum.next, %loop ]
  %at = getelementptr [8 x i64], ptr %words, i64 0, i64 %i
  %w = load i64, ptr %at, align 8
  %sum.next = add i64 %sum, %w
  %next = add i64 %i, 1
  %more = icmp ult i64 %next, 8
  br i1 %more, label %loop, label %done
done:
  ret i64 %sum.next
}

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  %sum = call i64 @ferry_test_sum_words(ptr byval([8 x i64]) align 8 %cx)
  store i64 %sum, ptr %result, align 8
  ret i32 0
}
