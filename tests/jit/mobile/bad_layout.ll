; Hostile: an x86_64 module claiming a 32-bit pointer data layout.
target datalayout = "e-p:32:32-i64:64-n8:16:32"
target triple = "x86_64-pc-linux-gnu"

define i32 @ferry_test_hostile_entry(ptr %cx, ptr %args, ptr %result) {
  ret i32 0
}
