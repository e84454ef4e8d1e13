// Rule [ferry-param]: parameters are trivially copyable values or ferry::ref.
#include <ferry/ferry.hpp>

struct counted {
  counted() = default;
  counted(const counted& o) : v(o.v + 1) {}
  int v = 0;
};

[[ferry::mobile]] int by_pointer(ferry::context&, const int* p) { return *p; }  // expected-error {{[ferry-param] parameter 'p' of ferry::mobile function 'by_pointer' has type 'const int *', which is a pointer: an address means nothing on another node; pass a ferry::ref<T> instead}}
[[ferry::mobile]] int by_reference(ferry::context&, const int& r) { return r; }  // expected-error {{[ferry-param] parameter 'r' of ferry::mobile function 'by_reference' has type 'const int &', which is a reference}}
[[ferry::mobile]] int by_copy(ferry::context&, counted c) { return c.v; }  // expected-error {{[ferry-param] parameter 'c' of ferry::mobile function 'by_copy' has type 'counted', which is not trivially copyable}}
[[ferry::mobile]] int fine(ferry::context&, ferry::ref<int> r, double d) { return static_cast<int>(d) + static_cast<int>(r.offset); }
