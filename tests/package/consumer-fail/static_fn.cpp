#include <ferry/ferry.hpp>

// Internal linkage: only a target compiled by clang 19 can index it.
[[ferry::mobile]] static std::uint64_t hidden(ferry::context&, std::uint64_t x) { return x + 1; }

int main() {
  auto code = ferry::code_registry::global().find(reinterpret_cast<const void*>(&hidden));
  return code && (*code)->name == "hidden" ? 0 : 1;
}
