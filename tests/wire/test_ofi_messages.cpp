// The libfabric transport's own messages (wire/ofi_messages.hpp): what a
// receiver accepts, and that everything else is a typed error.
#include "frames.hpp"
#include "ofi_messages.hpp"
#include "test_util.hpp"

using namespace ferry;
namespace ofi = ferry::wire::ofi;

TEST_CASE("ofi messages: rendezvous and rendezvous_done round trip, and the header names the kind") {
  const ofi::rendezvous rv{7, 4 << 20, 0x7f00'1234'0000, 0xabcdef, {1, 2, 3, 4, 5}};
  std::vector<std::uint8_t> bytes;
  ofi::encode(rv, bytes);
  CHECK(REQUIRE_OK(ofi::read_header(bytes)) == ofi::kind::rendezvous);
  const auto back = REQUIRE_OK(ofi::decode_rendezvous(bytes));
  CHECK(back.token == 7);
  CHECK(back.length == 4 << 20);
  CHECK(back.address == rv.address);
  CHECK(back.key == rv.key);
  CHECK(back.sender == rv.sender);

  std::uint8_t done[ofi::kRendezvousDoneSize];
  ofi::put_rendezvous_done(done, 99);
  CHECK(REQUIRE_OK(ofi::decode_rendezvous_done(done)) == 99);

  std::uint8_t frame[ofi::kHeaderSize + 3] = {0, 0, 0, 0, 9, 8, 7};
  ofi::put_header(frame, ofi::kind::frame);
  CHECK(REQUIRE_OK(ofi::read_header(frame)) == ofi::kind::frame);
}

TEST_CASE("ofi messages: short, unknown, future and inconsistent messages are typed errors") {
  std::vector<std::uint8_t> good;
  ofi::encode({1, 100, 0, 0, {1, 2}}, good);
  CHECK_ERRC(ofi::read_header(std::span(good).first(3)), errc::bad_format);
  auto future = good;
  future[0] = 2;
  CHECK_ERRC(ofi::read_header(future), errc::bad_version);
  auto unknown = good;
  unknown[1] = 9;
  CHECK_ERRC(ofi::read_header(unknown), errc::bad_format);
  auto reserved = good;
  reserved[3] = 1;
  CHECK_ERRC(ofi::read_header(reserved), errc::bad_format);
  for (std::size_t n = ofi::kHeaderSize; n < good.size(); ++n)
    CHECK_ERRC(ofi::decode_rendezvous(std::span(good).first(n)), errc::bad_format);
  auto trailing = good;
  trailing.push_back(0);
  CHECK_ERRC(ofi::decode_rendezvous(trailing), errc::bad_format);

  std::vector<std::uint8_t> huge;  // more than a frame may be: never allocated by a receiver
  ofi::encode({1, wire::kMaxFrame + 1, 0, 0, {1}}, huge);
  CHECK_ERRC(ofi::decode_rendezvous(huge), errc::bad_format);
  std::vector<std::uint8_t> empty;
  ofi::encode({1, 0, 0, 0, {1}}, empty);
  CHECK_ERRC(ofi::decode_rendezvous(empty), errc::bad_format);
  std::vector<std::uint8_t> no_sender;
  ofi::encode({1, 8, 0, 0, {}}, no_sender);
  CHECK_ERRC(ofi::decode_rendezvous(no_sender), errc::bad_format);

  std::uint8_t done[ofi::kRendezvousDoneSize];
  ofi::put_rendezvous_done(done, 5);
  CHECK_ERRC(ofi::decode_rendezvous_done(std::span(done).first(ofi::kRendezvousDoneSize - 1)), errc::bad_format);
  CHECK_ERRC(ofi::decode_rendezvous_done(good), errc::bad_format);  // another kind
}
