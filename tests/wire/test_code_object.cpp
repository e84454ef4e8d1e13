#include <ferry/code_object.hpp>

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
  flipped.back() ^= 0x40;  // last byte of the aarch64 bitcode
  CHECK_ERRC(code_object::decode(flipped), errc::corrupt);
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
  bytes.back() ^= 1;  // bitcode no longer matches its hash: decode refuses, the label is still readable
  CHECK(code_object::decode(bytes).code() == errc::corrupt);
  CHECK(code_object::peek_label(bytes).symbol == co.symbol);
  // Cut anywhere before the end of the symbol, or a wrong magic: nothing.
  const std::size_t symbol_end = 4 + 4 + 2 + 2 + 4 + co.name.size() + 4 + co.symbol.size();
  for (std::size_t n = 0; n < symbol_end; ++n) CHECK(code_object::peek_label(std::span(bytes).first(n)).symbol.empty());
  CHECK(code_object::peek_label(std::span(bytes).first(symbol_end)).symbol == co.symbol);
  bytes[4] ^= 0xff;
  CHECK(code_object::peek_label(bytes).symbol.empty());
}
