// libFuzzer target: the ifunc message reader (wire/ifunc_frame.cpp): the
// bytes a peer put into a ucp_poll_ifunc buffer, or the message blob of an
// `ifunc` frame arriving at a node — header, trailer, then the code section
// up to the code object (ifunc/message.cpp hands it to the JIT after that;
// LLVM is not in this target). A message that reads is taken once (its
// signal cleared) and its code section, if it decodes, keeps its identity
// through encode/decode; a signature check never crashes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <ferry/code_object.hpp>

#include "ifunc_frame.hpp"

namespace w = ferry::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The buffer as a node or ucp_poll_ifunc gives it: 8-aligned, the input's bytes.
  std::vector<std::uint64_t> words((size + 7) / 8);
  if (size) std::memcpy(words.data(), data, size);
  auto m = w::read_ifunc_message(words.data(), size);
  if (!m) {
    if (size >= w::kIfuncHeaderSize + 8 && w::ifunc_signal_present(words.data())) __builtin_trap();  // refused: taken
    return 0;
  }
  if (!*m) return 0;
  const w::ifunc_arrival& a = **m;
  const auto* base = reinterpret_cast<const std::uint8_t*>(words.data());
  if (a.header.frame_size() > size || a.payload.data() < base || a.code.data() + a.code.size() > base + size)
    __builtin_trap();  // everything it points to is inside the buffer
  if (a.header.code_attached) {
    if (auto code = w::decode_ifunc_code(a.code)) {
      const auto again = w::decode_ifunc_code(w::encode_ifunc_code(*code));
      if (!again || again->name != code->name || again->deps != code->deps || again->code.id() != code->code.id())
        __builtin_trap();
      const ferry::signing_public_key key{};
      (void)code->code.verify_signature(std::span(&key, 1));
    }
  }
  w::ifunc_clear_signal(words.data(), a.header);
  if (auto again = w::read_ifunc_message(words.data(), size); !again || *again) __builtin_trap();  // taken once
  return 0;
}
