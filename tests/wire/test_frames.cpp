#include <random>

#include "frames.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace ferry::wire;

namespace {

frame sample_invoke() {
  invoke_body b;
  b.code = object_id::random();
  b.symbol = "_Z5chaseRN5ferry7contextENS_3refImEEmj";
  b.signature_hash = 0x1234;
  b.origin = 3;
  b.origin_call = 99;
  b.code_holder = 3;
  b.deadline_us = 1'700'000'000'000'000;
  b.hops = 2;
  b.target = {object_id::random(), 64};
  b.args = {1, 2, 3, 4, 5, 6, 7, 8};
  b.code_blob = std::vector<std::uint8_t>(300, 0xab);
  return frame{frame_type::invoke, 1, 42, b};
}

std::vector<frame> one_of_each() {
  return {
      frame{frame_type::hello, 0, 0, hello_body{2, 1, "aarch64-unknown-linux-gnu", "cortex-a72", {9, 9, 9}}},
      sample_invoke(),
      frame{frame_type::reply, 2, 42, reply_body{{1, 0, 0, 0, 0, 0, 0, 0}}},
      frame{frame_type::error, 2, 42, error_body{errc::not_local, "object 12ab is not on node 2"}},
      frame{frame_type::code_request, 2, 7, code_request_body{object_id::random(), "sym"}},
      frame{frame_type::code_response, 1, 7, code_response_body{{1, 2, 3}}},
      frame{frame_type::object_create, 0, 8, object_create_body{object_id::random(), 4096}},
      frame{frame_type::object_put, 0, 9, object_put_body{{object_id::random(), 8}, {5, 5}}},
      frame{frame_type::object_get, 0, 10, object_get_body{{object_id::random(), 8}, 16}},
      frame{frame_type::object_remove, 0, 11, object_remove_body{object_id::random()}},
      frame{frame_type::object_data, 1, 10, object_data_body{{7, 7, 7}}},
      frame{frame_type::ack, 1, 8, empty_body{}},
      frame{frame_type::heartbeat, 1, 0, load_body{3, 2, 2, 150, 870, 41, 5, 65536, 2}},
      frame{frame_type::shutdown, kNoNode, 0, empty_body{}},
      frame{frame_type::echo, 0, 1, object_data_body{{1}}},
      frame{frame_type::dir_register, 2, 0, dir_register_body{object_id::random(), 2, 7}},
      frame{frame_type::object_migrate, 3, 12, dir_register_body{object_id::random(), 1}},
      frame{frame_type::object_image, 0, 13, object_image_body{object_id::random(), 4096, 1024, {9, 8, 7}}},
      frame{frame_type::dir_lookup, 4, 0, object_remove_body{object_id::random()}},
      frame{frame_type::ifunc, 3, 0,
            ifunc_body{3, 7, kIfuncInstall, {object_id::random(), 16}, errc::ok, "", {0x46, 0x49, 0x46, 0x43}}},
      frame{frame_type::ifunc, 1, 0, ifunc_body{3, 7, 0, {}, errc::memory_fault, "node_chaser_main: SIGSEGV", {}}},
      frame{frame_type::ifunc, 3, 0, ifunc_body{3, 7, kIfuncClose, {}, errc::ok, "", {}}},
      frame{frame_type::object_commit, 0, 14, dir_register_body{object_id::random(), 1, 3}},
      frame{frame_type::object_abort, 0, 0, dir_register_body{object_id::random(), 1, 3}},
      frame{frame_type::object_move_query, 1, 0, dir_register_body{object_id::random(), 1, 3}},
  };
}

}  // namespace

TEST_CASE("frames: every type round-trips") {
  for (const auto& f : one_of_each()) {
    CAPTURE(to_string(f.type));
    const auto bytes = encode(f);
    auto back = REQUIRE_OK(decode(bytes));
    CHECK(back.type == f.type);
    CHECK(back.source == f.source);
    CHECK(back.call == f.call);
    CHECK(back.body.index() == f.body.index());
    CHECK(encode(back) == bytes);  // canonical: re-encoding gives the same bytes
  }
  auto inv = std::get<invoke_body>(REQUIRE_OK(decode(encode(sample_invoke()))).body);
  const auto want = std::get<invoke_body>(sample_invoke().body);
  CHECK(inv.symbol == want.symbol);
  CHECK(inv.args == want.args);
  CHECK(inv.code_blob == want.code_blob);
  // An owner's version travels with it (directory/router.hpp).
  const frame hint{frame_type::dir_register, 2, 0, dir_register_body{object_id::random(), 2, 1ULL << 40}};
  CHECK(std::get<dir_register_body>(REQUIRE_OK(decode(encode(hint))).body).version == 1ULL << 40);
  CHECK(inv.hops == 2);
  CHECK(inv.deadline_us == want.deadline_us);
}

TEST_CASE("frames: every truncation is bad_format") {
  for (const auto& f : one_of_each()) {
    const auto bytes = encode(f);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      CAPTURE(n);
      CHECK_ERRC(decode(std::span(bytes).first(n)), errc::bad_format);
    }
    auto longer = bytes;
    longer.push_back(0);
    CHECK_ERRC(decode(longer), errc::bad_format);
  }
}

TEST_CASE("frames: bad header fields and lying lengths") {
  auto bytes = encode(sample_invoke());
  auto v = bytes;
  v[2] = 9;
  CHECK_ERRC(decode(v), errc::bad_version);
  v = bytes;
  v[0] ^= 0xff;
  CHECK_ERRC(decode(v), errc::bad_format);
  v = bytes;
  v[3] = 200;  // unknown type
  CHECK_ERRC(decode(v), errc::bad_format);
  v = bytes;
  v[3] = static_cast<std::uint8_t>(frame_type::reply);  // body of another type
  CHECK_ERRC(decode(v), errc::bad_format);
  // An object_data blob claiming 2^63 bytes must fail without allocating.
  auto d = encode(frame{frame_type::object_data, 0, 0, object_data_body{{1, 2, 3}}});
  d[kFrameHeaderSize + 7] = 0x80;
  CHECK_ERRC(decode(d), errc::bad_format);
}

TEST_CASE("frames: an invoke's flags: known ones round-trip, unknown ones and a tier asked of a call are bad_format") {
  auto with_flags = [](std::uint8_t flags) {
    auto f = sample_invoke();
    std::get<invoke_body>(f.body).flags = flags;
    return encode(f);
  };
  for (const std::uint8_t ok : {std::uint8_t{0}, kInvokePinned, kInvokePull,
                                static_cast<std::uint8_t>(kInvokePinned | kInvokeLoadOnly),
                                static_cast<std::uint8_t>(kInvokePinned | kInvokeLoadOnly | kInvokeOptimize)}) {
    CAPTURE(int{ok});
    CHECK(std::get<invoke_body>(REQUIRE_OK(decode(with_flags(ok))).body).flags == ok);
  }
  CHECK_ERRC(decode(with_flags(kInvokeOptimize)), errc::bad_format);  // only a preload asks for a tier
  CHECK_ERRC(decode(with_flags(static_cast<std::uint8_t>(kInvokePinned | kInvokeOptimize))), errc::bad_format);
  CHECK_ERRC(decode(with_flags(16)), errc::bad_format);
  CHECK_ERRC(decode(with_flags(0x80)), errc::bad_format);
}

TEST_CASE("frames: a bulk frame's head and its data are the frame's encoding, split") {
  const std::vector<std::uint8_t> data = [] {
    std::vector<std::uint8_t> d(70000);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<std::uint8_t>(i * 7 + 3);
    return d;
  }();
  const ref<void> at{object_id::random(), 4096};
  const frame whole_put{frame_type::object_put, 0, 9, object_put_body{at, data}};
  const frame whole_data{frame_type::object_data, 2, 10, object_data_body{data}};
  const frame head_put{frame_type::object_put, 0, 9, object_put_body{at, {}}};
  const frame head_data{frame_type::object_data, 2, 10, object_data_body{}};
  const frame whole_image{frame_type::object_image, 1, 3, object_image_body{at.id, 1 << 20, 65536, data}};  // a move's
  const frame head_image{frame_type::object_image, 1, 3, object_image_body{at.id, 1 << 20, 65536, {}}};
  for (const auto& [whole, head] :
       {std::pair{whole_put, head_put}, std::pair{whole_data, head_data}, std::pair{whole_image, head_image}}) {
    CAPTURE(to_string(whole.type));
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, data.size()}) {
      CAPTURE(n);
      frame expected = whole;
      data_bytes(expected)->resize(n);
      std::vector<std::uint8_t> bytes{9, 9, 9};  // replaced, as encode_into does
      REQUIRE_OK(encode_head_into(head, n, bytes));
      CHECK(bytes.size() == encode(head).size());
      bytes.insert(bytes.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK(bytes == encode(expected));
      const auto back = REQUIRE_OK(decode(bytes));
      CHECK(back.type == whole.type);
      const auto& got = *data_bytes(back);
      CHECK(got == std::vector<std::uint8_t>(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
  std::vector<std::uint8_t> bytes;
  // Only frames that end with their data bytes, and only without them.
  CHECK_ERRC(encode_head_into(sample_invoke(), 8, bytes), errc::invalid_argument);
  CHECK_ERRC(encode_head_into(frame{frame_type::object_get, 0, 10, object_get_body{at, 16}}, 8, bytes),
             errc::invalid_argument);
  CHECK_ERRC(encode_head_into(whole_put, 8, bytes), errc::invalid_argument);
  CHECK_ERRC(encode_head_into(frame{frame_type::object_create, 1, 3, object_create_body{at.id, 64}}, 8, bytes),
             errc::invalid_argument);
  CHECK_ERRC(encode_head_into(head_data, kMaxFrame, bytes), errc::too_large);
}

TEST_CASE("frames: a bulk frame decoded with a view leaves its data where it is, and the rest as decode does") {
  std::vector<std::uint8_t> data(5000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 13 + 1);
  const ref<void> at{object_id::random(), 4096};
  for (const frame& whole : {frame{frame_type::object_put, 0, 9, object_put_body{at, data}},
                             frame{frame_type::object_data, 2, 10, object_data_body{data}},
                             frame{frame_type::object_image, 1, 3, object_image_body{at.id, 8192, 0, data}}}) {
    CAPTURE(to_string(whole.type));
    const auto bytes = encode(whole);
    frame f;
    std::span<const std::uint8_t> view;
    REQUIRE_OK(decode_into(bytes, f, &view));
    CHECK(f.type == whole.type);
    CHECK(f.call == whole.call);
    REQUIRE(data_bytes(f) != nullptr);
    CHECK(data_bytes(f)->empty());  // not copied
    CHECK(view.data() == bytes.data() + bytes.size() - data.size());  // the data where it arrived
    CHECK(std::equal(view.begin(), view.end(), data.begin(), data.end()));
    if (whole.type == frame_type::object_put) CHECK(std::get<object_put_body>(f.body).at == at);
    if (whole.type == frame_type::object_image) {  // the part's place in its image
      CHECK(std::get<object_image_body>(f.body).id == at.id);
      CHECK(std::get<object_image_body>(f.body).image_size == 8192);
      CHECK(std::get<object_image_body>(f.body).offset == 0);
    }
    // A lying data length is bad_format, with a view as without.
    auto lying = bytes;
    lying[bytes.size() - data.size() - 8] += 1;
    CHECK_ERRC(decode_into(lying, f, &view), errc::bad_format);
  }
  // Other frames decode whole, and the view is empty; so is it for frames that
  // share object_data's body but not its place at the end (echo).
  for (const frame& other : one_of_each()) {
    if (data_bytes(other) != nullptr) continue;
    CAPTURE(to_string(other.type));
    std::span<const std::uint8_t> view{data};
    frame f;
    REQUIRE_OK(decode_into(encode(other), f, &view));
    CHECK(view.empty());
    CHECK(encode(f) == encode(other));
  }
}

TEST_CASE("frames: random mutations never crash and never decode garbage silently" * doctest::timeout(60)) {
  std::mt19937_64 rng(12345);
  std::size_t rejected = 0, accepted = 0;
  for (const auto& f : one_of_each()) {
    const auto bytes = encode(f);
    for (int i = 0; i < 400; ++i) {
      auto m = bytes;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) m[rng() % m.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      auto r = decode(m);
      if (!r) {
        CHECK((r.code() == errc::bad_format || r.code() == errc::bad_version));
        ++rejected;
      } else {
        // Mutations in value fields decode; they must re-encode to the same bytes.
        CHECK(encode(*r) == m);
        ++accepted;
      }
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0);
}

TEST_CASE("frames: the deadline clocks agree with the wall clock") {
  // One read for both clocks: the deadline clock from the steady reading and
  // their difference. Both must agree with a direct read of each clock.
  for (int i = 0; i < 1000; ++i) {
    const auto steady_before = std::chrono::steady_clock::now();
    const std::uint64_t wall_before = wire::deadline_clock_us();
    const wire::call_clocks both = wire::read_call_clocks();
    const std::uint64_t wall_after = wire::deadline_clock_us();
    const auto steady_after = std::chrono::steady_clock::now();
    REQUIRE(both.steady >= steady_before);
    REQUIRE(both.steady <= steady_after);
    // Within 2 ms of the direct reads (a wrong sign or unit is seconds or
    // years off; the drift between the clocks in a second, microseconds).
    REQUIRE(both.deadline_us + 2000 >= wall_before);
    REQUIRE(both.deadline_us <= wall_after + 2000);
  }
  // The coarse clock lags the wall clock by up to one kernel tick (at most
  // 10 ms at HZ=100) and never runs ahead of it.
  const std::uint64_t coarse = wire::coarse_deadline_clock_us();
  const std::uint64_t wall = wire::deadline_clock_us();
  CHECK(coarse <= wall);
  CHECK(coarse + 20'000 >= wall);
}
