#include <unordered_set>

#include <ferry/object_id.hpp>

#include "test_util.hpp"

using ferry::errc;
using ferry::object_id;

TEST_CASE("object_id: random ids are distinct and never nil") {
  std::unordered_set<object_id> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = object_id::random();
    CHECK_FALSE(id.is_nil());
    CHECK(seen.insert(id).second);
  }
}

TEST_CASE("object_id: text form round-trips, 32 lowercase hex digits") {
  auto id = object_id::random();
  auto text = id.to_string();
  CHECK(text.size() == 32);
  CHECK(text.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(REQUIRE_OK(object_id::parse(text)) == id);
  CHECK(REQUIRE_OK(object_id::parse("0123456789ABCDEF0123456789abcdef")) ==
        object_id{0x0123456789abcdefULL, 0x0123456789abcdefULL});
}

TEST_CASE("object_id: malformed text is invalid_argument") {
  CHECK_ERRC(object_id::parse(""), errc::invalid_argument);
  CHECK_ERRC(object_id::parse("0123"), errc::invalid_argument);
  CHECK_ERRC(object_id::parse("0123456789abcdef0123456789abcdeg"), errc::invalid_argument);
  CHECK_ERRC(object_id::parse("0123456789abcdef0123456789abcdef0"), errc::invalid_argument);
}

TEST_CASE("object_id: content ids are deterministic and content-sensitive") {
  const char a[] = "mobile code";
  const char b[] = "mobile codf";
  CHECK(object_id::of_content(a, sizeof a) == object_id::of_content(a, sizeof a));
  CHECK(object_id::of_content(a, sizeof a) != object_id::of_content(b, sizeof b));
  // BLAKE2b-256("") starts 0e5751c026e543b2 e8ab2eb06099daa1 (RFC 7693 test vectors).
  CHECK(object_id::of_content("", 0).to_string() == "0e5751c026e543b2e8ab2eb06099daa1");
}
