// libFuzzer target: the code-object reader (wire/code_object.cpp) and the
// code-section reader (runtime/code/section.cpp), which see code pushed or
// pulled from peers and the sections of programs. A code object that decodes
// keeps its id through encode/decode; signature checks never crash.
#include <cstddef>
#include <cstdint>
#include <span>

#include <ferry/code_object.hpp>
#include <ferry/code_registry.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  (void)ferry::code_object::peek_label(bytes);
  (void)ferry::decode_code_section_records(bytes);
  auto co = ferry::code_object::decode(bytes);
  if (!co) return 0;
  const auto again = ferry::code_object::decode(co->encode());
  if (!again || again->id() != co->id()) __builtin_trap();
  const ferry::signing_public_key key{};
  (void)co->verify_signature(std::span(&key, 1));
  return 0;
}
