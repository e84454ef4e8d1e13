// UCX ifunc messages (wire/ifunc_frame.hpp): header and code section round
// trip; signals; malformed input is a typed error.
#include <algorithm>
#include <array>
#include <cstring>

#include "ifunc_frame.hpp"
#include "test_util.hpp"

using namespace ferry;
namespace w = ferry::wire;

namespace {
w::ifunc_header sample_header() {
  w::ifunc_header h;
  h.code_attached = true;
  h.key = object_id{0x1122334455667788, 0x99aabbccddeeff00};
  h.payload_size = 13;
  h.code_size = 1000;
  h.nonce = 0x5eed;
  return h;
}
}  // namespace

TEST_CASE("ifunc frame: the header round trips and places the trailer 8-aligned after everything") {
  const auto h = sample_header();
  alignas(8) std::uint8_t buf[w::kIfuncHeaderSize];
  w::encode_ifunc_header(h, buf);
  const auto back = REQUIRE_OK(w::decode_ifunc_header(buf));
  CHECK(back.code_attached);
  CHECK(back.key == h.key);
  CHECK(back.payload_size == 13);
  CHECK(back.code_size == 1000);
  CHECK(back.nonce == 0x5eed);
  CHECK(back.trailer_offset() == 1080);  // 64 + 13 + 1000 = 1077, aligned up
  CHECK(back.frame_size() == 1088);
}

TEST_CASE("ifunc frame: magic and trailer signal one message, and taking it clears both") {
  const auto h = sample_header();
  std::vector<std::uint64_t> storage(h.frame_size() / 8, 0);
  auto* frame = reinterpret_cast<std::uint8_t*>(storage.data());
  CHECK_FALSE(w::ifunc_signal_present(frame));
  w::encode_ifunc_header(h, std::span<std::uint8_t, w::kIfuncHeaderSize>(frame, w::kIfuncHeaderSize));
  CHECK(w::ifunc_signal_present(frame));
  CHECK_FALSE(w::ifunc_trailer_present(frame, h));
  w::write_ifunc_trailer(frame, h);
  CHECK(w::ifunc_trailer_present(frame, h));
  auto other = h;  // another message's trailer at the same place does not count
  other.nonce = 0x600d;
  CHECK_FALSE(w::ifunc_trailer_present(frame, other));
  w::ifunc_clear_signal(frame, h);
  CHECK_FALSE(w::ifunc_signal_present(frame));
  CHECK_FALSE(w::ifunc_trailer_present(frame, h));
}

TEST_CASE("ifunc frame: reading a buffer finds a whole message inside it, or refuses and takes it") {
  auto h = sample_header();
  std::vector<std::uint64_t> storage(h.frame_size() / 8 + 2, 0);
  auto* buf = reinterpret_cast<std::uint8_t*>(storage.data());
  const std::size_t size = storage.size() * 8;
  CHECK(REQUIRE_OK(w::read_ifunc_message(buf, size)) == std::nullopt);  // nothing there
  w::encode_ifunc_header(h, std::span<std::uint8_t, w::kIfuncHeaderSize>(buf, w::kIfuncHeaderSize));
  CHECK(REQUIRE_OK(w::read_ifunc_message(buf, size)) == std::nullopt);  // trailer not arrived
  w::write_ifunc_trailer(buf, h);
  const auto m = REQUIRE_OK(w::read_ifunc_message(buf, size));
  REQUIRE(m);
  CHECK(m->payload.data() == buf + w::kIfuncHeaderSize);
  CHECK(m->payload.size() == 13);
  CHECK(m->code.data() == buf + w::kIfuncHeaderSize + 13);
  CHECK(m->code.size() == 1000);
  CHECK(w::ifunc_signal_present(buf));  // the caller takes it
  // One byte too small a buffer: refused without reading the trailer, and taken.
  CHECK_ERRC(w::read_ifunc_message(buf, h.frame_size() - 1), errc::too_large);
  CHECK_FALSE(w::ifunc_signal_present(buf));
  CHECK_ERRC(w::read_ifunc_message(buf + 1, size - 8), errc::invalid_argument);  // not 8-aligned
  CHECK_ERRC(w::read_ifunc_message(buf, w::kIfuncHeaderSize), errc::invalid_argument);
  h.nonce = 0;  // a malformed header is taken too
  w::encode_ifunc_header(h, std::span<std::uint8_t, w::kIfuncHeaderSize>(buf, w::kIfuncHeaderSize));
  CHECK_ERRC(w::read_ifunc_message(buf, size), errc::bad_format);
  CHECK_FALSE(w::ifunc_signal_present(buf));
}

TEST_CASE("ifunc frame: malformed headers are typed errors") {
  alignas(8) std::uint8_t good[w::kIfuncHeaderSize];
  w::encode_ifunc_header(sample_header(), good);
  auto mutate = [&](std::size_t at, std::uint8_t v) {
    std::array<std::uint8_t, w::kIfuncHeaderSize> b;
    std::memcpy(b.data(), good, b.size());
    b[at] = v;
    return b;
  };
  CHECK_ERRC(w::decode_ifunc_header(mutate(0, 0)), errc::bad_format);      // no magic
  CHECK_ERRC(w::decode_ifunc_header(mutate(4, 2)), errc::bad_version);     // version 2
  CHECK_ERRC(w::decode_ifunc_header(mutate(5, 0x81)), errc::bad_format);   // unknown flag
  CHECK_ERRC(w::decode_ifunc_header(mutate(5, 0)), errc::bad_format);      // code size without code
  CHECK_ERRC(w::decode_ifunc_header(mutate(63, 1)), errc::bad_format);     // reserved byte set
  CHECK_ERRC(w::decode_ifunc_header(mutate(39, 0x80)), errc::too_large);   // code size 2^63+
  auto no_nonce = sample_header();
  no_nonce.nonce = 0;
  alignas(8) std::uint8_t b[w::kIfuncHeaderSize];
  w::encode_ifunc_header(no_nonce, b);
  CHECK_ERRC(w::decode_ifunc_header(b), errc::bad_format);
}

TEST_CASE("ifunc frame: the code section round trips and rejects truncation") {
  w::ifunc_code c;
  c.name = "a_name_much_longer_than_the_prototypes_seven_characters";
  c.pure = true;
  c.deps = {"libc.so.6", "libz.so.1"};
  c.code.name = c.name;
  c.code.symbol = c.name + "_main";
  c.code.entry_symbol = c.code.symbol;
  code_variant v;
  v.triple = "x86_64-unknown-linux-gnu";
  v.cpu = "x86-64";
  v.llvm_version = "19.1.7";
  v.bitcode = {'B', 'C', 0xc0, 0xde};
  c.code.variants.push_back(v);
  c.code.seal();
  const auto bytes = w::encode_ifunc_code(c);
  const auto back = REQUIRE_OK(w::decode_ifunc_code(bytes));
  CHECK(back.name == c.name);
  CHECK(back.pure);
  CHECK(back.deps == c.deps);
  CHECK(back.code.id() == c.code.id());
  CHECK_ERRC(w::decode_ifunc_code(std::span(bytes).first(bytes.size() - 1)), errc::bad_format);
  auto tampered = bytes;
  const std::uint8_t magic[] = {'B', 'C', 0xc0, 0xde};
  auto at = std::search(tampered.begin(), tampered.end(), std::begin(magic), std::end(magic));
  REQUIRE(at != tampered.end());
  at[3] ^= 1;  // a bitcode byte: no longer matches its hash
  CHECK_FALSE(w::decode_ifunc_code(tampered).has_value());
}
