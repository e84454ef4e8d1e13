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

std::vector<code_section_record> decode_code_section_records(std::span<const std::uint8_t> bytes) {
  std::vector<code_section_record> out;
  wire::reader r(bytes);
  while (r.remaining() > 0) {
    const auto at = r.position();
    const auto len = r.get<std::uint64_t>();
    if (!r.ok()) {
      out.push_back({at, make_error(errc::bad_format, fmt::format("code section: truncated record length at offset {}", at)), {}});
      break;
    }
    if (len == 0) continue;
    const auto left = bytes.size() - at - 8;
    const auto body = r.get_bytes(len);
    if (!r.ok()) {
      out.push_back({at,
                     make_error(errc::bad_format,
                                fmt::format("code section: record at offset {} claims {} bytes, {} left", at, len, left)),
                     code_object::peek_label(bytes.subspan(at + 8))});
      break;
    }
    auto co = code_object::decode(body);
    if (co) {
      out.push_back({at, std::move(*co), {}});
    } else {
      out.push_back({at, make_error(co.code(), fmt::format("code section record at offset {}: {}", at, co.error().message())),
                     code_object::peek_label(body)});
    }
  }
  return out;
}

result<std::vector<code_object>> decode_code_section(std::span<const std::uint8_t> bytes) {
  std::vector<code_object> out;
  for (auto& rec : decode_code_section_records(bytes)) {
    if (!rec.object) return rec.object.error();
    out.push_back(std::move(*rec.object));
  }
  return out;
}

}  // namespace ferry
