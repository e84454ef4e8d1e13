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
constexpr std::uint32_t kSignatureMagic = 0x53595246;  // bytes "FRYS"
constexpr std::size_t kSignatureSlot = 4 + 32 + 64;
// Domain separation: these signatures can never be mistaken for another use of the key.
constexpr std::string_view kSignatureDomain = "ferry code object signature v1";

std::array<std::uint8_t, 32> hash_bitcode(std::span<const std::uint8_t> bc) {
  std::array<std::uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), bc.data(), bc.size(), nullptr, 0);
  return h;
}

status malformed(std::string_view what) {
  return make_error(errc::bad_format, fmt::format("malformed code object: {}", what));
}

// What is signed: the domain string, then BLAKE2b-256 of the manifest.
std::vector<std::uint8_t> signed_message(std::span<const std::uint8_t> manifest) {
  std::vector<std::uint8_t> m(kSignatureDomain.begin(), kSignatureDomain.end());
  m.resize(m.size() + 32);
  crypto_generichash(m.data() + kSignatureDomain.size(), 32, manifest.data(), manifest.size(), nullptr, 0);
  return m;
}

code_signature signature_over(std::span<const std::uint8_t> manifest, const signing_secret_key& key) {
  code_signature s;
  std::memcpy(s.signer.data(), key.data() + 32, 32);  // libsodium: seed, then public key
  const auto m = signed_message(manifest);
  crypto_sign_detached(s.signature.data(), nullptr, m.data(), m.size(), key.data());
  return s;
}

std::string key_label(const signing_public_key& k) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += fmt::format("{:02x}", k[i]);
  return s;
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
  w.put(kSignatureMagic);
  w.put_bytes(signature.signer);
  w.put_bytes(signature.signature);
  return std::move(w.bytes());
}

bool code_signature::present() const noexcept {
  return std::any_of(signer.begin(), signer.end(), [](auto b) { return b != 0; }) ||
         std::any_of(signature.begin(), signature.end(), [](auto b) { return b != 0; });
}

void code_object::sign(const signing_secret_key& key) { signature = signature_over(encode_manifest(), key); }

status code_object::verify_signature(std::span<const signing_public_key> trusted) const {
  if (!signature.present())
    return make_error(errc::unsigned_code,
                      fmt::format("code object {} is not signed, and this node accepts only signed code (sign it "
                                  "with `ferry sign --key KEY PROGRAM`; an ifunc library: `ferry sign --ifunc --key KEY "
                                  "LIBDIR/NAME`)",
                                  name));
  if (std::find(trusted.begin(), trusted.end(), signature.signer) == trusted.end())
    return make_error(errc::untrusted_signer, fmt::format("code object {} is signed by key {}, which this node "
                                                          "does not trust (not in its --trust-keys directory)",
                                                          name, key_label(signature.signer)));
  const auto m = signed_message(encode_manifest());
  if (crypto_sign_verify_detached(signature.signature.data(), m.data(), m.size(), signature.signer.data()) != 0)
    return make_error(errc::bad_signature, fmt::format("code object {}: the signature of key {} does not match "
                                                       "the code (changed after signing?)",
                                                       name, key_label(signature.signer)));
  return {};
}

status code_object::sign_encoding(std::span<std::uint8_t> encoding, const signing_secret_key& key) {
  auto co = decode(encoding);  // so the slot is where it must be
  if (!co) return co.error();
  const auto s = signature_over(co->encode_manifest(), key);
  auto* slot = encoding.data() + encoding.size() - kSignatureSlot + 4;
  std::memcpy(slot, s.signer.data(), 32);
  std::memcpy(slot + 32, s.signature.data(), 64);
  return {};
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
  // The signature slot (all zero when unsigned).
  const auto magic = outer.get<std::uint32_t>();
  const auto signer = outer.get_bytes(32);
  const auto sig = outer.get_bytes(64);
  if (!outer.ok()) return malformed("signature slot truncated");
  if (magic != kSignatureMagic) return malformed("bad signature slot magic");
  std::memcpy(co.signature.signer.data(), signer.data(), 32);
  std::memcpy(co.signature.signature.data(), sig.data(), 64);
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
