// Rule [ferry-result]: results are trivially copyable values or void.
#include <ferry/ferry.hpp>

const int kAnswer = 42;

[[ferry::mobile]] const int* where(ferry::context&) { return &kAnswer; }  // expected-error {{[ferry-result] ferry::mobile function 'where' returns 'const int *', which is a pointer}}
