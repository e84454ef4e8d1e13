// libFuzzer target: the object image reader (wire/object_layout.cpp), which
// every image a persistent store loads from disk goes through.
#include <cstddef>
#include <cstdint>
#include <span>

#include "object_layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> image(reinterpret_cast<const std::byte*>(data), size);
  auto shape = ferry::layout::read_header(image);
  auto valid = ferry::layout::validate(image);
  if (valid && !shape) __builtin_trap();  // a valid image has a readable header
  return 0;
}
