// `ferry_code` section framing (docs/code-objects.md, "Sections and side
// files"). Shared by the plugin, ferry-pack, the registry and ferry inspect.
#include <ferry/code_registry.hpp>

#include <fmt/format.h>

#include "codec.hpp"  // wire/: one definition of the byte codec

namespace ferry {

std::vector<std::uint8_t> encode_code_section(std::span<const code_object> objects) {
  wire::writer w;
  for (const auto& co : objects) {
    const auto bytes = co.encode();
    w.put(static_cast<std::uint64_t>(bytes.size()));
    w.put_bytes(bytes);
  }
  return std::move(w.bytes());
}

result<std::vector<code_object>> decode_code_section(std::span<const std::uint8_t> bytes) {
  std::vector<code_object> out;
  wire::reader r(bytes);
  while (r.remaining() > 0) {
    const auto at = r.position();
    const auto len = r.get<std::uint64_t>();
    if (!r.ok()) return make_error(errc::bad_format, fmt::format("code section: truncated record length at offset {}", at));
    if (len == 0) continue;
    const auto body = r.get_bytes(len);
    if (!r.ok())
      return make_error(errc::bad_format,
                        fmt::format("code section: record at offset {} claims {} bytes, {} left", at, len,
                                    bytes.size() - at - 8));
    auto co = code_object::decode(body);
    if (!co) return make_error(co.code(), fmt::format("code section record at offset {}: {}", at, co.error().message()));
    out.push_back(std::move(*co));
  }
  return out;
}

}  // namespace ferry
