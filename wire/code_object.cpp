// Code object encoding, version 1 (specification: docs/code-objects.md).
#include <ferry/code_object.hpp>

#include <algorithm>
#include <cstring>

#include <sodium.h>

#include <fmt/format.h>

#include "codec.hpp"

namespace ferry {
namespace {

constexpr std::uint32_t kMagic = 0x43595246;  // bytes "FRYC"
constexpr std::uint16_t kVersion = 1;
constexpr std::uint32_t kMaxParams = 64;
constexpr std::uint32_t kMaxReferences = 1024;
constexpr std::uint32_t kMaxVariants = 16;
constexpr std::uint64_t kMaxBitcode = std::uint64_t{256} << 20;

std::array<std::uint8_t, 32> hash_bitcode(std::span<const std::uint8_t> bc) {
  std::array<std::uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), bc.data(), bc.size(), nullptr, 0);
  return h;
}

status malformed(std::string_view what) {
  return make_error(errc::bad_format, fmt::format("malformed code object: {}", what));
}

}  // namespace

void code_object::seal() {
  for (auto& v : variants) v.bitcode_hash = hash_bitcode(v.bitcode);
}

std::vector<std::uint8_t> code_object::encode_manifest() const {
  wire::writer w;
  w.put(kMagic);
  w.put(kVersion);
  w.put(std::uint16_t{0});
  w.put_string(name);
  w.put_string(symbol);
  w.put_string(entry_symbol);
  w.put(static_cast<std::uint32_t>(params.size()));
  for (const auto& p : params) {
    w.put(static_cast<std::uint8_t>(p.what));
    w.put(p.size);
    w.put(p.align);
    w.put_string(p.type);
  }
  w.put(args_size);
  w.put(result_size);
  w.put_string(result_type);
  w.put(signature_hash);
  w.put(static_cast<std::uint32_t>(references.size()));
  for (const auto& r : references) w.put_string(r);
  w.put(static_cast<std::uint32_t>(variants.size()));
  for (const auto& v : variants) {
    w.put_string(v.triple);
    w.put_string(v.cpu);
    w.put_string(v.features);
    w.put_string(v.llvm_version);
    w.put(static_cast<std::uint64_t>(v.bitcode.size()));
    w.put_bytes(v.bitcode_hash);
  }
  return std::move(w.bytes());
}

std::vector<std::uint8_t> code_object::encode() const {
  auto manifest = encode_manifest();
  wire::writer w;
  w.put(static_cast<std::uint32_t>(manifest.size()));
  w.put_bytes(manifest);
  for (const auto& v : variants) w.put_bytes(v.bitcode);
  return std::move(w.bytes());
}

object_id code_object::id() const {
  const auto m = encode_manifest();
  return object_id::of_content(m.data(), m.size());
}

result<code_object> code_object::decode(std::span<const std::uint8_t> bytes) {
  wire::reader outer(bytes);
  const auto manifest_len = outer.get<std::uint32_t>();
  const auto manifest = outer.get_bytes(manifest_len);
  if (!outer.ok()) return malformed("truncated manifest");

  wire::reader r(manifest);
  if (r.get<std::uint32_t>() != kMagic) return malformed("bad magic");
  if (const auto v = r.get<std::uint16_t>(); v != kVersion)
    return make_error(errc::bad_version, fmt::format("code object format version {} (this build reads {})", v, kVersion));
  r.get<std::uint16_t>();
  code_object co;
  co.name = r.get_string();
  co.symbol = r.get_string();
  co.entry_symbol = r.get_string();
  const auto nparams = r.get<std::uint32_t>();
  if (nparams > kMaxParams) return malformed("too many parameters");
  for (std::uint32_t i = 0; i < nparams && r.ok(); ++i) {
    code_param p;
    const auto kind = r.get<std::uint8_t>();
    if (kind > 1) return malformed("unknown parameter kind");
    p.what = static_cast<code_param::kind>(kind);
    p.size = r.get<std::uint32_t>();
    p.align = r.get<std::uint32_t>();
    p.type = r.get_string();
    co.params.push_back(std::move(p));
  }
  co.args_size = r.get<std::uint32_t>();
  co.result_size = r.get<std::uint32_t>();
  co.result_type = r.get_string();
  co.signature_hash = r.get<std::uint64_t>();
  const auto nrefs = r.get<std::uint32_t>();
  if (nrefs > kMaxReferences) return malformed("too many references");
  for (std::uint32_t i = 0; i < nrefs && r.ok(); ++i) co.references.push_back(r.get_string());
  const auto nvariants = r.get<std::uint32_t>();
  if (nvariants > kMaxVariants) return malformed("too many variants");
  std::vector<std::uint64_t> sizes;
  for (std::uint32_t i = 0; i < nvariants && r.ok(); ++i) {
    code_variant v;
    v.triple = r.get_string();
    v.cpu = r.get_string();
    v.features = r.get_string();
    v.llvm_version = r.get_string();
    sizes.push_back(r.get<std::uint64_t>());
    const auto h = r.get_bytes(32);
    if (r.ok()) std::memcpy(v.bitcode_hash.data(), h.data(), 32);
    co.variants.push_back(std::move(v));
  }
  if (!r.ok() || r.remaining() != 0) return malformed("manifest fields do not match its length");
  if (co.symbol.empty() || co.entry_symbol.empty()) return malformed("empty symbol");

  for (std::size_t i = 0; i < co.variants.size(); ++i) {
    if (sizes[i] > kMaxBitcode) return malformed("bitcode larger than 256 MiB");
    const auto bc = outer.get_bytes(sizes[i]);
    if (!outer.ok()) return malformed(fmt::format("variant {} bitcode truncated", co.variants[i].triple));
    if (hash_bitcode(bc) != co.variants[i].bitcode_hash)
      return make_error(errc::corrupt, fmt::format("code object {}: variant {} bitcode does not match its hash",
                                                   co.name, co.variants[i].triple));
    co.variants[i].bitcode.assign(bc.begin(), bc.end());
  }
  if (outer.remaining() != 0) return malformed("trailing bytes");
  return co;
}

code_object::label code_object::peek_label(std::span<const std::uint8_t> bytes) {
  wire::reader outer(bytes);
  const auto manifest_len = outer.get<std::uint32_t>();
  // A manifest cut short still names its function if the cut is after the symbol.
  wire::reader r(outer.get_bytes(std::min<std::size_t>(manifest_len, outer.remaining())));
  if (r.get<std::uint32_t>() != kMagic || r.get<std::uint16_t>() != kVersion) return {};
  r.get<std::uint16_t>();
  label l;
  l.name = r.get_string();
  l.symbol = r.get_string();
  if (!r.ok() || l.symbol.empty()) return {};
  return l;
}

std::uint64_t signature_hash_of(std::string_view result_type, std::span<const code_param> params) {
  std::string canon(result_type);
  canon += '(';
  for (const auto& p : params) canon += fmt::format("{}:{}:{}:{};", static_cast<int>(p.what), p.size, p.align, p.type);
  canon += ')';
  unsigned char digest[16];  // BLAKE2b's minimum output; the first 8 bytes are the hash
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(canon.data()), canon.size(),
                     nullptr, 0);
  std::uint64_t h;
  std::memcpy(&h, digest, sizeof h);
  return h;
}

}  // namespace ferry
