#include <ferry/ferry.hpp>

// A pointer means nothing on another node: [ferry-param].
[[ferry::mobile]] std::uint64_t deref(ferry::context&, const std::uint64_t* p) { return *p; }

int main() { return 0; }
