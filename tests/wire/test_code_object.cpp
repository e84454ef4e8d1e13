#include <cstdio>
#include <fstream>

#include <ferry/code_object.hpp>
#include <ferry/code_registry.hpp>
#include <ferry/code_signing.hpp>

#include "test_util.hpp"

using namespace ferry;

namespace {
code_object sample() {
  code_object co;
  co.name = "graph::chase";
  co.symbol = "_ZN5graph5chaseERN5ferry7contextENS1_3refImEEmj";
  co.entry_symbol = "__ferry_entry._ZN5graph5chaseE";
  co.params = {{code_param::kind::ref, 24, 8, "ferry::ref<unsigned long>"},
               {code_param::kind::value, 8, 8, "unsigned long"},
               {code_param::kind::value, 4, 4, "unsigned int"}};
  co.args_size = 36;
  co.result_size = 8;
  co.result_type = "unsigned long";
  co.signature_hash = signature_hash_of(co.result_type, co.params);
  co.references = {"_Z4walkRN5ferry7contextE"};
  co.variants.push_back({"x86_64-pc-linux-gnu", "x86-64", "+sse2", "19.1.7", {}, {'B', 'C', 0xc0, 0xde, 1, 2, 3}});
  co.variants.push_back({"aarch64-unknown-linux-gnu", "generic", "+neon", "19.1.7", {}, {'B', 'C', 0xc0, 0xde, 9}});
  co.seal();
  return co;
}
}  // namespace

TEST_CASE("code object: encode/decode round-trip keeps the id") {
  const auto co = sample();
  const auto bytes = co.encode();
  auto back = REQUIRE_OK(code_object::decode(bytes));
  CHECK(back.id() == co.id());
  CHECK(back.name == co.name);
  CHECK(back.params.size() == 3);
  CHECK(back.params[0].what == code_param::kind::ref);
  CHECK(back.variants[1].bitcode == co.variants[1].bitcode);
  CHECK(back.references == co.references);
}

TEST_CASE("code object: the id covers every byte of code and manifest") {
  const auto base = sample().id();
  auto co = sample();
  co.variants[0].bitcode.back() ^= 1;
  co.seal();
  CHECK(co.id() != base);
  co = sample();
  co.variants[1].features = "+neon,+sve";
  CHECK(co.id() != base);
  co = sample();
  co.result_size = 4;
  CHECK(co.id() != base);
  CHECK(sample().id() == base);
}

TEST_CASE("code object: hostile encodings get typed errors") {
  const auto bytes = sample().encode();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(code_object::decode(std::span(bytes).first(n)).ok());
  }
  auto flipped = bytes;
  flipped[bytes.size() - 100 - 1] ^= 0x40;  // last byte of the aarch64 bitcode, before the 100-byte signature slot
  CHECK_ERRC(code_object::decode(flipped), errc::corrupt);
  auto slot = bytes;
  slot[bytes.size() - 100] ^= 0x01;  // the slot's magic
  CHECK_ERRC(code_object::decode(slot), errc::bad_format);
  auto trailing = bytes;
  trailing.push_back(0);
  CHECK_ERRC(code_object::decode(trailing), errc::bad_format);
  auto version = bytes;
  version[8] = 7;  // u32 manifest length, u32 magic, then u16 version
  CHECK_ERRC(code_object::decode(version), errc::bad_version);
}

TEST_CASE("code object: peek_label names the function of a damaged encoding") {
  const auto co = sample();
  auto bytes = co.encode();
  auto l = code_object::peek_label(bytes);
  CHECK(l.name == co.name);
  CHECK(l.symbol == co.symbol);
  bytes[bytes.size() - 100 - 1] ^= 1;  // bitcode (before the signature slot) no longer matches its hash: decode refuses, the label is still readable
  CHECK(code_object::decode(bytes).code() == errc::corrupt);
  CHECK(code_object::peek_label(bytes).symbol == co.symbol);
  // Cut anywhere before the end of the symbol, or a wrong magic: nothing.
  const std::size_t symbol_end = 4 + 4 + 2 + 2 + 4 + co.name.size() + 4 + co.symbol.size();
  for (std::size_t n = 0; n < symbol_end; ++n) CHECK(code_object::peek_label(std::span(bytes).first(n)).symbol.empty());
  CHECK(code_object::peek_label(std::span(bytes).first(symbol_end)).symbol == co.symbol);
  bytes[4] ^= 0xff;
  CHECK(code_object::peek_label(bytes).symbol.empty());
}

TEST_CASE("code object: signatures cover the manifest, not the id, and name what is wrong") {
  const auto key = generate_signing_key();
  const auto other = generate_signing_key();
  const std::vector<signing_public_key> trusted{key.public_key};
  auto co = sample();
  const auto id = co.id();
  CHECK_FALSE(co.signature.present());
  CHECK_ERRC(result<void>(co.verify_signature(trusted)), errc::unsigned_code);

  co.sign(key.secret_key);
  CHECK(co.signature.present());
  CHECK(co.id() == id);  // a signed and an unsigned copy are the same code
  REQUIRE_OK(co.verify_signature(trusted));
  const auto back = REQUIRE_OK(code_object::decode(co.encode()));
  CHECK(back.signature.signer == key.public_key);
  REQUIRE_OK(back.verify_signature(trusted));
  CHECK_ERRC(result<void>(back.verify_signature(std::vector<signing_public_key>{other.public_key})),
             errc::untrusted_signer);

  // Signing an encoding in place gives the same bytes as signing the object.
  auto bytes = sample().encode();
  REQUIRE_OK(code_object::sign_encoding(bytes, key.secret_key));
  CHECK(bytes == co.encode());

  // Code changed after signing, hashes recomputed: the signature no longer matches.
  auto changed = co;
  changed.variants[0].bitcode.back() ^= 1;
  changed.seal();
  CHECK_ERRC(result<void>(changed.verify_signature(trusted)), errc::bad_signature);
  auto renamed = co;
  renamed.name = "graph::other";
  CHECK_ERRC(result<void>(renamed.verify_signature(trusted)), errc::bad_signature);
  // A flipped signature byte.
  auto flipped = co.encode();
  flipped.back() ^= 1;
  CHECK_ERRC(result<void>(REQUIRE_OK(code_object::decode(flipped)).verify_signature(trusted)), errc::bad_signature);
}

TEST_CASE("code sections: sign_code_section signs every record in place, and key files round-trip") {
  const auto key = generate_signing_key();
  std::vector<code_object> objects{sample(), sample()};
  objects[1].name = "graph::walk";
  objects[1].symbol = "_Z4walkRN5ferry7contextE";
  auto section = encode_code_section(objects);
  const auto size = section.size();
  CHECK(REQUIRE_OK(sign_code_section(section, key.secret_key)) == 2);
  CHECK(section.size() == size);
  for (const auto& co : REQUIRE_OK(decode_code_section(section)))
    REQUIRE_OK(co.verify_signature(std::vector<signing_public_key>{key.public_key}));
  auto damaged = section;
  damaged[8 + 4] ^= 0xff;  // the first record's magic: nothing is signed
  CHECK_FALSE(sign_code_section(damaged, key.secret_key).ok());

  test::temp_dir dir;
  REQUIRE_OK(write_signing_key(dir.path() / "k", key));
  CHECK(REQUIRE_OK(read_secret_key(dir.path() / "k.key")) == key.secret_key);
  CHECK(REQUIRE_OK(read_public_key(dir.path() / "k.pub")) == key.public_key);
  CHECK(REQUIRE_OK(read_trusted_keys(dir.path())) == std::vector<signing_public_key>{key.public_key});
  CHECK_ERRC(result<void>(write_signing_key(dir.path() / "k", key)), errc::already_exists);
  test::temp_dir empty;
  CHECK_ERRC(read_trusted_keys(empty.path()), errc::invalid_argument);
  std::ofstream(dir.path() / "bad.pub") << "ferry-ed25519-public 1234\n";
  CHECK_ERRC(read_trusted_keys(dir.path()), errc::bad_format);
  // A secret key whose public half is not its seed's.
  auto forged = key.secret_key;
  forged[40] ^= 1;
  std::string hex;
  for (auto b : forged) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  std::ofstream(dir.path() / "forged.key") << "ferry-ed25519-secret " << hex << "\n";
  CHECK_ERRC(read_secret_key(dir.path() / "forged.key"), errc::bad_format);
}
