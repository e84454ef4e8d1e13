// Rule [ferry-subject]: only functions can be mobile.
#include <ferry/ferry.hpp>

[[ferry::mobile]] int counter = 0;  // expected-error {{[ferry-subject] 'ferry::mobile' applies to functions only, not to variable 'counter'}}

struct [[ferry::mobile]] node {  // expected-error {{[ferry-subject] 'ferry::mobile' applies to functions only, not to type 'node'}}
  int value;
};
