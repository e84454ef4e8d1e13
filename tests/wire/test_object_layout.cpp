// The object image's checksum (docs/object-format.md, "Checksum"): the
// digests kept beside an image patched in place seal it exactly as sealing
// the whole image does, a new object's zero tail is sealed without being
// hashed, and version 1 images are still read.
#include <random>
#include <vector>

#include "object_layout.hpp"
#include "test_util.hpp"

using namespace ferry;
namespace layout = ferry::layout;

namespace {

// A sealed image of the given shape, its data filled from `seed`.
std::vector<std::byte> image_of(std::uint32_t fot_capacity, std::uint64_t data_size, unsigned seed) {
  std::vector<std::byte> img(layout::image_size_for(fot_capacity, data_size));
  layout::init(img, object_id{7, 9}, fot_capacity, data_size);
  std::mt19937_64 rng(seed);
  for (std::uint64_t i = layout::data_offset_for(fot_capacity); i < img.size(); ++i)
    img[i] = static_cast<std::byte>(rng());
  layout::seal(img);
  return img;
}

std::uint64_t stored_checksum(std::span<const std::byte> img) { return layout::load_u64(img.data() + layout::kOffChecksum); }

}  // namespace

TEST_CASE("object layout: blocks are 64 KiB up to 4 GiB images, then grow to keep 65536 of them") {
  CHECK(layout::seal_block_bytes(64) == 64 * 1024);
  CHECK(layout::seal_block_bytes(std::uint64_t{4} << 30) == 64 * 1024);
  CHECK(layout::seal_block_bytes((std::uint64_t{4} << 30) + 1) == 128 * 1024);
  CHECK(layout::seal_block_bytes(std::uint64_t{1} << 40) == 16 * 1024 * 1024);
  const std::uint64_t largest = layout::image_size_for(65535, std::uint64_t{1} << 48);
  CHECK((largest + layout::seal_block_bytes(largest) - 1) / layout::seal_block_bytes(largest) <= layout::kSealMaxBlocks);
}

TEST_CASE("object layout: an image patched in place seals as the whole image does") {
  // Sizes around the block and group boundaries: one short block, exactly
  // one block, one byte more, and two groups (1024 blocks each) and a bit.
  const std::uint64_t block = layout::kSealMinBlockBytes;
  const std::uint64_t group = block * layout::kSealGroupBlocks;
  for (const std::uint64_t data : {std::uint64_t{100}, block - 64, block - 63, group + 3 * block + 5}) {
    CAPTURE(data);
    auto img = image_of(1, data, 1);
    REQUIRE_OK(layout::validate(img));
    auto tree = layout::seal_tree::of(img);
    CHECK(tree.covers(img));
    CHECK(tree.checksum() == stored_checksum(img));
    std::mt19937_64 rng(data);
    for (int round = 0; round < 40; ++round) {
      // Patches anywhere, across block and group boundaries too, up to 3
      // blocks long: one at a time, or (odd rounds) three told at once,
      // which may overlap or share blocks; in an image of two groups the
      // last of three lies in the second group, so a batch folds both.
      const bool batch = round % 2 == 1;
      std::vector<layout::image_range> ranges;
      for (int k = 0; k < (batch ? 3 : 1); ++k) {
        const std::uint64_t data_off = layout::data_offset_for(1);
        const std::uint64_t len = 1 + rng() % std::min<std::uint64_t>(data, 3 * block);
        const std::uint64_t from = batch && k == 2 && data > group ? group : 0;  // within the data
        const std::uint64_t at = data_off + from + rng() % (data - from - len + 1);
        for (std::uint64_t i = 0; i < len; ++i) img[at + i] = static_cast<std::byte>(rng());
        ranges.push_back({at, len});
      }
      if (batch) {
        tree.patched(img, ranges);
      } else {
        tree.patched(img, ranges[0].offset, ranges[0].length);
      }
      tree.seal(img);
      const auto incremental = stored_checksum(img);
      layout::seal(img);
      REQUIRE(stored_checksum(img) == incremental);
    }
    // A patch the tree is not told about is caught: the image no longer validates.
    img[img.size() - 1] ^= std::byte{1};
    tree.seal(img);
    CHECK_ERRC(layout::validate(img), errc::corrupt);
  }
}

TEST_CASE("object layout: a new object's zero tail seals as the whole zero image does, with its tree") {
  const std::uint64_t block = layout::kSealMinBlockBytes;
  // The largest FOT (a prefix of about 1 MiB: 17 blocks), a small one; data
  // ending inside a block, on a block's end, and past the first group.
  for (const std::uint32_t fot : {0u, 65535u}) {
    for (const std::uint64_t data : {std::uint64_t{0}, std::uint64_t{10}, 3 * block, 1030 * block + 17}) {
      CAPTURE(fot);
      CAPTURE(data);
      std::vector<std::byte> whole(layout::image_size_for(fot, data));
      layout::init(whole, object_id{1, 2}, fot, data);
      std::vector<std::byte> prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(layout::data_offset_for(fot)));
      auto tree = layout::seal_zero_tail(prefix, whole.size());
      layout::seal(whole);
      CHECK(stored_checksum(prefix) == stored_checksum(whole));
      std::copy(prefix.begin(), prefix.end(), whole.begin());
      REQUIRE(tree.covers(whole));
      CHECK(tree.checksum() == stored_checksum(whole));
      // The tree goes on serving patches of the image.
      if (data >= 8) {
        whole[whole.size() - 8] = std::byte{0x5a};
        tree.patched(whole, whole.size() - 8, 1);
        tree.seal(whole);
        REQUIRE_OK(layout::validate(whole));
      }
    }
  }
}

TEST_CASE("object layout: an image fed front to back in pieces has the whole image's digests, and is checked by them") {
  // Pieces of random sizes (the checksum field and block ends fall inside
  // them or on their edges), over images of one short block to two groups.
  const std::uint64_t block = layout::kSealMinBlockBytes;
  const std::uint64_t group = block * layout::kSealGroupBlocks;
  for (const std::uint64_t data : {std::uint64_t{100}, block - 64, 5 * block, group + 3 * block + 5}) {
    CAPTURE(data);
    auto img = image_of(1, data, 3);
    std::mt19937_64 rng(data);
    for (const std::uint64_t most : {std::uint64_t{1} << 20, std::uint64_t{61440}, std::uint64_t{50}}) {
      CAPTURE(most);
      layout::seal_stream stream(img.size());
      for (std::uint64_t at = 0; at < img.size();) {
        const std::uint64_t n = std::min<std::uint64_t>(img.size() - at, 1 + rng() % most);
        CHECK_FALSE(stream.complete());
        stream.feed(std::span<const std::byte>(img).subspan(at, n));
        at += n;
        REQUIRE(stream.fed() == at);
        if (most == 50 && at > 4 * block) break;  // small pieces: the start is enough
      }
      if (!stream.complete()) continue;
      CHECK(stream.tree().checksum() == stored_checksum(img));
      CHECK(stream.tree().checksum() == layout::seal_tree::of(img).checksum());
      REQUIRE_OK(layout::validate(img, stream.tree()));
    }
    // Bytes that are not those fed: the check by the digests refuses them.
    layout::seal_stream stream(img.size());
    auto other = img;
    other[img.size() - 1] ^= std::byte{1};
    stream.feed(other);
    CHECK_ERRC(layout::validate(img, stream.tree()), errc::corrupt);
    CHECK_ERRC(layout::validate(other, stream.tree()), errc::corrupt);  // fed, but not what the header says
  }
}

TEST_CASE("object layout: version 1 images (one pass over the whole image) are read, and sealed as version 2") {
  auto img = image_of(2, 5000, 3);
  layout::store_u64(img.data() + layout::kOffChecksum, 0);
  img[layout::kOffVersion] = std::byte{1};
  const auto v1 = layout::compute_checksum(img);
  layout::store_u64(img.data() + layout::kOffChecksum, v1);
  CHECK(REQUIRE_OK(layout::validate(img)).version == 1);

  auto flipped = img;
  flipped[img.size() - 100] ^= std::byte{4};
  CHECK_ERRC(layout::validate(flipped), errc::corrupt);
  // A version 2 checksum is not a version 1 one: the version is checked with it.
  auto relabelled = img;
  relabelled[layout::kOffVersion] = std::byte{2};
  CHECK_ERRC(layout::validate(relabelled), errc::corrupt);
  for (const int other : {0, 3, 255}) {
    auto future = img;
    future[layout::kOffVersion] = static_cast<std::byte>(other);
    CHECK_ERRC(layout::validate(future), errc::bad_version);
  }

  // Sealing through a tree built on the old image upgrades it.
  auto tree = layout::seal_tree::of(img);
  img[layout::data_offset_for(2)] = std::byte{1};
  tree.patched(img, layout::data_offset_for(2), 1);
  tree.seal(img);
  CHECK(REQUIRE_OK(layout::validate(img)).version == layout::kFormatVersion);
}
