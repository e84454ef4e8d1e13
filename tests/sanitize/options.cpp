// The sanitizers' options for every program of the sanitizer build
// (FERRY_SANITIZE, `make test-sanitize`; docs/security.md, "Sanitizers"):
// compiled in, so `ferry node` processes a test starts run with the same
// options as the test. ASAN_OPTIONS etc. in the environment still override.
//
// Why each option:
//  - UBSan halts at its first finding with a stack (the build also says
//    -fno-sanitize-recover=all): a finding fails the test.
//  - ASan keeps its defaults for SIGSEGV and the alternate signal stack:
//    ferry's containment (runtime/exec/abi.cpp) installs its own handlers
//    after ASan's, on ASan's alternate stack, handles the faults of mobile
//    code itself and passes every other fault to ASan's handler, which
//    reports it.
//  - Leak checking is on; the suppressions (lsan.supp) name only
//    third-party frames.
extern "C" {
const char* __asan_default_options() { return "detect_leaks=1:strict_string_checks=1:check_initialization_order=1"; }
const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
const char* __lsan_default_options() { return "suppressions=" FERRY_LSAN_SUPPRESSIONS; }
// TSan (the tsan preset): a race fails the test (exit code 66 at exit, and
// halt_on_error stops at the first); the suppressions name only
// third-party frames (UCX, libfabric, LLVM are not instrumented).
const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1:suppressions=" FERRY_TSAN_SUPPRESSIONS;
}
}
