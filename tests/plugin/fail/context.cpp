// Rule [ferry-context], C++: ferry::context by reference, first.
#include <ferry/ferry.hpp>

[[ferry::mobile]] int by_value(int x, ferry::context& cx) { return x; }  // expected-error {{[ferry-context] the first parameter of ferry::mobile function 'by_value' must be 'ferry::context&'}}
