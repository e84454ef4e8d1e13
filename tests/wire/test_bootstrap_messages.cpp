// Host-list bootstrap messages (wire/bootstrap.hpp): round trips, and every
// malformed or foreign input rejected with a typed error.
#include <random>

#include "bootstrap.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace ferry::wire;

namespace {

bootstrap_answer sample_answer() {
  bootstrap_answer a;
  a.ask = bootstrap_ask::address;
  a.nodes = 3;
  a.index = 2;
  a.address = std::vector<std::uint8_t>(200, 0x5a);
  return a;
}

}  // namespace

TEST_CASE("bootstrap messages: requests and answers round-trip canonically") {
  for (const auto ask : {bootstrap_ask::address, bootstrap_ask::member_index}) {
    const bootstrap_request q{ask, 7};
    const auto bytes = encode(q);
    const auto back = REQUIRE_OK(decode_bootstrap_request(bytes));
    CHECK(back.ask == ask);
    CHECK(back.nodes == 7);
    CHECK(encode(back) == bytes);
  }
  auto refused = sample_answer();
  refused.code = errc::invalid_argument;
  refused.address.clear();
  refused.message = "node 1 does not grant member indices: ask node 0";
  for (const auto& a : {sample_answer(), refused}) {
    const auto bytes = encode(a);
    const auto back = REQUIRE_OK(decode_bootstrap_answer(bytes));
    CHECK(back.code == a.code);
    CHECK(back.nodes == a.nodes);
    CHECK(back.index == a.index);
    CHECK(back.address == a.address);
    CHECK(back.message == a.message);
    CHECK(encode(back) == bytes);
  }
}

TEST_CASE("bootstrap messages: foreign, truncated, padded and unknown inputs are typed errors") {
  const auto request = encode(bootstrap_request{bootstrap_ask::address, 3});
  const auto answer = encode(sample_answer());

  CHECK_ERRC(decode_bootstrap_request({}), errc::bad_format);
  const std::string http = "GET / HTTP/1.1\r\n\r\n";  // someone else's port
  CHECK_ERRC(decode_bootstrap_answer({reinterpret_cast<const std::uint8_t*>(http.data()), http.size()}), errc::bad_format);

  auto other_version = request;
  other_version[2] = 2;
  CHECK_ERRC(decode_bootstrap_request(other_version), errc::bad_version);

  auto unknown_ask = request;
  unknown_ask[3] = 9;
  CHECK_ERRC(decode_bootstrap_request(unknown_ask), errc::bad_format);

  auto padded = request;
  padded.push_back(0);
  CHECK_ERRC(decode_bootstrap_request(padded), errc::bad_format);

  for (std::size_t n = 0; n < answer.size(); ++n)
    CHECK_ERRC(decode_bootstrap_answer({answer.data(), n}), errc::bad_format);

  auto unknown_errc = answer;
  unknown_errc[4] = 0xff;  // u16 errc after magic, version and ask
  CHECK_ERRC(decode_bootstrap_answer(unknown_errc), errc::bad_format);

  // Random corruption never crashes and never decodes to a different message silently.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    auto m = answer;
    m[rng() % m.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    auto back = decode_bootstrap_answer(m);
    if (back) CHECK(encode(*back) == m);
  }
}
