; Not hostile: sums n 64-bit words two at a time, with <2 x i64> loads, a
; vector PHI and the lanes extracted at the end: what the optimizer makes of
; a simple loop. The fast tier splits it into scalar code before code
; generation (jit/compile.cpp), so its compile stays on the fast
; instruction selector. Arguments: { ptr words; i64 n (even) }; result:
; the sum.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
entry:
  %words = load ptr, ptr %args, align 8
  %n.at = getelementptr i8, ptr %args, i64 8
  %n = load i64, ptr %n.at, align 8
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %done, label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %acc = phi <2 x i64> [ zeroinitializer, %entry ], [ %sum, %loop ]
  %at = getelementptr i64, ptr %words, i64 %i
  %pair = load <2 x i64>, ptr %at, align 8
  %sum = add <2 x i64> %acc, %pair
  %next = add i64 %i, 2
  %more = icmp ult i64 %next, %n
  br i1 %more, label %loop, label %done

done:
  %total = phi <2 x i64> [ zeroinitializer, %entry ], [ %sum, %loop ]
  %low = extractelement <2 x i64> %total, i64 0
  %high = extractelement <2 x i64> %total, i64 1
  %s = add i64 %low, %high
  store i64 %s, ptr %result, align 8
  ret i32 0
}
