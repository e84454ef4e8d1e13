// libFuzzer target: the host-list bootstrap messages (wire/bootstrap.cpp),
// read by nodes from anyone who connects to their bootstrap port.
#include <cstddef>
#include <cstdint>
#include <span>

#include "bootstrap.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  if (auto r = ferry::wire::decode_bootstrap_request(bytes)) {
    auto again = ferry::wire::decode_bootstrap_request(ferry::wire::encode(*r));
    if (!again || again->nodes != r->nodes || again->ask != r->ask) __builtin_trap();
  }
  if (auto a = ferry::wire::decode_bootstrap_answer(bytes)) {
    auto again = ferry::wire::decode_bootstrap_answer(ferry::wire::encode(*a));
    if (!again || again->address != a->address || again->code != a->code) __builtin_trap();
  }
  return 0;
}
