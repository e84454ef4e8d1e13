// libFuzzer target: the object image reader (wire/object_layout.cpp), which
// every image a persistent store loads from disk goes through, and the
// check of a moved image by the digests computed as its parts arrived.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "object_layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> image(reinterpret_cast<const std::byte*>(data), size);
  auto shape = ferry::layout::read_header(image);
  auto valid = ferry::layout::validate(image);
  if (valid && !shape) __builtin_trap();  // a valid image has a readable header
  // Fed in pieces (as a move's parts arrive), the digests give the same verdict.
  ferry::layout::seal_stream stream(image.size());
  for (std::size_t at = 0, piece = 1; at < image.size(); at += piece, piece = piece * 3 + 1)
    stream.feed(image.subspan(at, std::min(piece, image.size() - at)));
  if (image.size() != 0 && static_cast<bool>(ferry::layout::validate(image, stream.tree())) != static_cast<bool>(valid))
    __builtin_trap();
  return 0;
}
