// Rule [ferry-lambda]: a lambda has no stable symbol.
#include <ferry/ferry.hpp>

auto twice = [] [[ferry::mobile]] (ferry::context&, int x) { return 2 * x; };  // expected-error {{[ferry-lambda] a lambda cannot be ferry::mobile}} expected-warning {{C++23 extension}}
