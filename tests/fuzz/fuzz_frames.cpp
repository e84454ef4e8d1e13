// libFuzzer target: the runtime frame decoder (wire/frames.cpp), which every
// byte from the network goes through. A frame that decodes must encode and
// decode again to the same bytes' meaning.
#include <cstddef>
#include <cstdint>
#include <span>

#include "frames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto f = ferry::wire::decode(std::span(data, size));
  if (!f) return 0;
  const auto again = ferry::wire::decode(ferry::wire::encode(*f));
  if (!again || again->type != f->type || again->call != f->call || again->source != f->source) __builtin_trap();
  return 0;
}
