// Rule [ferry-member]: non-static member functions need an object that does not travel.
#include <ferry/ferry.hpp>

struct counter {
  int n = 0;
  [[ferry::mobile]] int bump(ferry::context& cx);  // expected-error {{[ferry-member] non-static member function 'bump' cannot be ferry::mobile}}
  [[ferry::mobile]] static int fine(ferry::context& cx, int x) { return x; }
};
