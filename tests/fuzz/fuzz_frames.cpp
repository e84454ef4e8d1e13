// libFuzzer target: the runtime frame decoder (wire/frames.cpp), which every
// byte from the network goes through. A frame that decodes must encode and
// decode again to the same bytes' meaning; decoded with its data left in
// place (a view, as a client takes a get's chunk), it must be accepted or
// refused alike, and with its data put back be the same frame.
#include <cstddef>
#include <cstdint>
#include <span>

#include "frames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  auto f = ferry::wire::decode(bytes);
  ferry::wire::frame viewed;
  std::span<const std::uint8_t> view;
  const bool viewed_ok = ferry::wire::decode_into(bytes, viewed, &view).ok();
  if (viewed_ok != f.ok()) __builtin_trap();
  if (!f) return 0;
  const auto again = ferry::wire::decode(ferry::wire::encode(*f));
  if (!again || again->type != f->type || again->call != f->call || again->source != f->source) __builtin_trap();
  if (auto* held = ferry::wire::data_bytes(viewed)) {
    if (!held->empty() || view.data() < data || view.data() + view.size() > data + size) __builtin_trap();
    held->assign(view.begin(), view.end());
  } else if (!view.empty()) {
    __builtin_trap();
  }
  if (ferry::wire::encode(viewed) != ferry::wire::encode(*f)) __builtin_trap();
  return 0;
}
