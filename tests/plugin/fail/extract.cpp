// Rule [ferry-extract]: what only shows in the generated code (here the C++
// exception runtime) is caught after code generation.
#include <ferry/ferry.hpp>

struct failure {
  int code;
};

[[ferry::mobile]] int checked(ferry::context&, int x) {  // expected-error {{[ferry-extract] ferry::mobile function 'checked' cannot travel: its code calls '__cxa_}}
  if (x < 0) throw failure{x};
  return x;
}
