#include "object_layout.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>
#include <vector>

#include <sodium.h>

#define XXH_INLINE_ALL  // header only: nothing to link, on the host or aarch64
#include <xxhash.h>

#include <fmt/format.h>

namespace ferry::layout {
namespace {

static_assert(std::endian::native == std::endian::little,
              "ferry stores integers little-endian and currently assumes a little-endian host");

template <class U>
U load(const std::byte* p) noexcept {
  U v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class U>
void put(std::byte* p, U v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

object_id load_id(const std::byte* p) noexcept { return {load<std::uint64_t>(p), load<std::uint64_t>(p + 8)}; }
void put_id(std::byte* p, object_id id) noexcept {
  put(p, id.hi);
  put(p + 8, id.lo);
}

}  // namespace

std::uint64_t load_u64(const std::byte* p) noexcept { return load<std::uint64_t>(p); }
void store_u64(std::byte* p, std::uint64_t v) noexcept { put(p, v); }

std::uint64_t data_offset_for(std::uint32_t fot_capacity) noexcept {
  const std::uint64_t end = kHeaderSize + std::uint64_t{fot_capacity} * kFotEntrySize;
  return (end + kDataAlign - 1) / kDataAlign * kDataAlign;
}

std::uint64_t image_size_for(std::uint32_t fot_capacity, std::uint64_t data_size) noexcept {
  return data_offset_for(fot_capacity) + data_size;
}

void init(std::span<std::byte> image, object_id id, std::uint32_t fot_capacity, std::uint64_t data_size) {
  const std::uint64_t data_off = data_offset_for(fot_capacity);
  std::memset(image.data(), 0, data_off);
  std::byte* h = image.data();
  put(h + kOffMagic, kMagic);
  put(h + kOffVersion, kFormatVersion);
  put(h + kOffHeaderSize, static_cast<std::uint16_t>(kHeaderSize));
  put_id(h + kOffId, id);
  put(h + kOffFotCount, std::uint32_t{0});
  put(h + kOffFotCapacity, fot_capacity);
  put(h + kOffDataSize, data_size);
  put(h + kOffDataOffset, data_off);
}

result<header> read_header(std::span<const std::byte> image) {
  if (image.size() < kHeaderSize)
    return make_error(errc::bad_format, fmt::format("object image truncated: {} bytes, header alone is {}",
                                                    image.size(), kHeaderSize));
  const std::byte* h = image.data();
  if (load<std::uint32_t>(h + kOffMagic) != kMagic)
    return make_error(errc::bad_format, "not a ferry object image (bad magic)");
  const auto version = load<std::uint16_t>(h + kOffVersion);
  if (version < kOldestReadableVersion || version > kFormatVersion)
    return make_error(errc::bad_version,
                      fmt::format("object format version {} is not supported (this build reads {} to {})", version,
                                  kOldestReadableVersion, kFormatVersion));
  if (load<std::uint16_t>(h + kOffHeaderSize) != kHeaderSize)
    return make_error(errc::bad_format, "object header size field is not 64");
  header out;
  out.version = version;
  out.id = load_id(h + kOffId);
  out.fot_count = load<std::uint32_t>(h + kOffFotCount);
  out.fot_capacity = load<std::uint32_t>(h + kOffFotCapacity);
  out.data_size = load<std::uint64_t>(h + kOffDataSize);
  out.data_offset = load<std::uint64_t>(h + kOffDataOffset);
  out.checksum = load<std::uint64_t>(h + kOffChecksum);
  out.moves = load<std::uint64_t>(h + kOffMoves);
  const auto id_text = out.id.short_string();
  if (out.id.is_nil()) return make_error(errc::bad_format, "object header carries the nil id");
  if (out.fot_capacity > 65535 || out.fot_count > out.fot_capacity)
    return make_error(errc::bad_format, fmt::format("object {}: FOT count {} / capacity {} invalid", id_text,
                                                    out.fot_count, out.fot_capacity));
  if (out.data_offset != data_offset_for(out.fot_capacity))
    return make_error(errc::bad_format, fmt::format("object {}: data offset {} inconsistent with FOT capacity {}",
                                                    id_text, out.data_offset, out.fot_capacity));
  if (out.data_size > (std::uint64_t{1} << 48) || image.size() != out.data_offset + out.data_size)
    return make_error(errc::bad_format,
                      fmt::format("object {}: image is {} bytes but header says {} (truncated or padded)", id_text,
                                  image.size(), out.data_offset + out.data_size));
  return out;
}

namespace {
result<header> checked(const header& h, std::uint64_t actual) {
  if (actual != h.checksum)
    return make_error(errc::corrupt, fmt::format("object {}: checksum mismatch (stored {:016x}, computed {:016x})",
                                                 h.id.to_string(), h.checksum, actual));
  return h;
}
}  // namespace

result<header> validate(std::span<const std::byte> image) {
  FERRY_TRY(header h, read_header(image));
  return checked(h, compute_checksum(image));
}

namespace {

using digest = seal_tree::digest;

// Version 2 hashes with XXH3-128 (seed 0): a checksum against damage, not
// an authenticator (anyone can compute it), so it may be fast. Digests are
// in XXH3's canonical (big-endian) byte form.
class xxh3_128 {
 public:
  xxh3_128() { reset(); }
  void reset() noexcept { XXH3_128bits_reset(&st_); }
  void feed(const void* p, std::uint64_t n) noexcept { XXH3_128bits_update(&st_, p, n); }
  void feed_zeros(std::uint64_t n) noexcept {
    static constexpr std::byte zeros[64 * 1024] = {};
    for (; n > 0;) {
      const std::uint64_t k = std::min<std::uint64_t>(n, sizeof zeros);
      feed(zeros, k);
      n -= k;
    }
  }
  // Bytes [from, to) of an image, the checksum field read as zero.
  void feed_image(const std::byte* image, std::uint64_t from, std::uint64_t to) noexcept {
    if (from < to) feed_at(image + from, from, to - from);
  }
  // `n` bytes at `bytes`, which are the image's bytes from offset `at`, the
  // checksum field read as zero.
  void feed_at(const std::byte* bytes, std::uint64_t at, std::uint64_t n) noexcept {
    constexpr std::uint64_t field = kOffChecksum, field_end = kOffChecksum + 8;
    const std::uint64_t to = at + n;
    if (at < field) feed(bytes, std::min(to, field) - at);
    if (at < field_end && to > field) feed_zeros(std::min(to, field_end) - std::max(at, field));
    if (to > field_end) {
      const std::uint64_t from = std::max(at, field_end);
      feed(bytes + (from - at), to - from);
    }
  }
  digest finish() const noexcept { return canonical(XXH3_128bits_digest(&st_)); }
  static digest canonical(XXH128_hash_t h) noexcept {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    digest d;
    std::memcpy(d.data(), c.digest, d.size());
    return d;
  }

 private:
  XXH3_state_t st_;
};

// Block `i` of an image whose blocks are `block` bytes.
digest block_digest(std::span<const std::byte> image, std::uint64_t block, std::uint64_t i) noexcept {
  const std::uint64_t from = i * block, to = std::min<std::uint64_t>(image.size(), from + block);
  xxh3_128 h;
  h.feed_image(image.data(), from, to);
  return h.finish();
}

XXH128_hash_t fold(std::span<const digest> parts) noexcept {
  return XXH3_128bits(parts.data(), parts.size_bytes());
}
digest fold_digest(std::span<const digest> parts) noexcept { return xxh3_128::canonical(fold(parts)); }

// Version 1: BLAKE2b-128 over the whole image in one pass, the first 8
// bytes of the digest.
std::uint64_t whole_image_checksum(std::span<const std::byte> image) noexcept {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  static constexpr unsigned char zeros[8] = {};
  const auto* p = reinterpret_cast<const unsigned char*>(image.data());
  crypto_generichash_update(&st, p, kOffChecksum);
  crypto_generichash_update(&st, zeros, sizeof zeros);
  crypto_generichash_update(&st, p + kOffChecksum + 8, image.size() - kOffChecksum - 8);
  unsigned char d[16];
  crypto_generichash_final(&st, d, sizeof d);
  return load<std::uint64_t>(reinterpret_cast<const std::byte*>(d));
}

std::uint64_t blocks_of(std::uint64_t image_size, std::uint64_t block) noexcept {
  return (image_size + block - 1) / block;
}

}  // namespace

std::uint64_t seal_block_bytes(std::uint64_t image_size) noexcept {
  std::uint64_t block = kSealMinBlockBytes;
  while (blocks_of(image_size, block) > kSealMaxBlocks) block *= 2;
  return block;
}

seal_tree::seal_tree(std::uint64_t image_size)
    : image_size_(image_size),
      block_(seal_block_bytes(image_size)),
      leaves_(blocks_of(image_size, block_)),
      groups_(blocks_of(leaves_.size(), kSealGroupBlocks)) {}

void seal_tree::refold_groups() {
  for (std::uint64_t g = 0; g < groups_.size(); ++g) refold_group(g);
}

seal_tree seal_tree::of(std::span<const std::byte> image) {
  seal_tree t(image.size());
  for (std::uint64_t i = 0; i < t.leaves_.size(); ++i) t.leaves_[i] = block_digest(image, t.block_, i);
  t.refold_groups();
  return t;
}

void seal_tree::refold_group(std::uint64_t group) {
  const std::uint64_t from = group * kSealGroupBlocks;
  const std::uint64_t n = std::min<std::uint64_t>(leaves_.size() - from, kSealGroupBlocks);
  groups_[group] = fold_digest(std::span(leaves_).subspan(from, n));
}

std::uint64_t seal_tree::checksum() const noexcept { return fold(groups_).low64; }

void seal_tree::patched(std::span<const std::byte> image, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  const std::uint64_t first = offset / block_, last = (offset + length - 1) / block_;
  for (std::uint64_t i = first; i <= last; ++i) leaves_[i] = block_digest(image, block_, i);
  for (std::uint64_t g = first / kSealGroupBlocks; g <= last / kSealGroupBlocks; ++g) refold_group(g);
}

void seal_tree::patched(std::span<const std::byte> image, std::span<const image_range> ranges) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks;  // first and last block of each range
  blocks.reserve(ranges.size());
  for (const auto& r : ranges)
    if (r.length != 0) blocks.emplace_back(r.offset / block_, (r.offset + r.length - 1) / block_);
  std::sort(blocks.begin(), blocks.end());
  // Every touched block once (in order), then every group above them once:
  // a group is folded after all its blocks are.
  std::uint64_t next_block = 0, next_group = 0;
  for (const auto& [first, last] : blocks)
    for (std::uint64_t i = std::max(first, next_block); i <= last; next_block = ++i)
      leaves_[i] = block_digest(image, block_, i);
  for (const auto& [first, last] : blocks)
    for (std::uint64_t g = std::max(first / kSealGroupBlocks, next_group); g <= last / kSealGroupBlocks; next_group = ++g)
      refold_group(g);
}

void seal_tree::seal(std::span<std::byte> image) {
  if (load<std::uint16_t>(image.data() + kOffVersion) != kFormatVersion) {
    put(image.data() + kOffVersion, kFormatVersion);
    patched(image, kOffVersion, 2);
  }
  put(image.data() + kOffChecksum, checksum());
}

std::uint64_t compute_checksum(std::span<const std::byte> image) {
  if (load<std::uint16_t>(image.data() + kOffVersion) == 1) return whole_image_checksum(image);
  return seal_tree::of(image).checksum();
}

void seal(std::span<std::byte> image) {
  put(image.data() + kOffVersion, kFormatVersion);
  put(image.data() + kOffChecksum, seal_tree::of(image).checksum());
}

seal_tree seal_zero_tail(std::span<std::byte> prefix, std::uint64_t image_size) {
  put(prefix.data() + kOffVersion, kFormatVersion);
  seal_tree t(image_size);
  digest zero_block{};
  bool zero_block_known = false;
  for (std::uint64_t i = 0; i < t.leaves_.size(); ++i) {
    const std::uint64_t from = i * t.block_, to = std::min(image_size, from + t.block_);
    if (from >= prefix.size() && to - from == t.block_ && zero_block_known) {
      t.leaves_[i] = zero_block;
      continue;
    }
    const std::uint64_t zeros_from = std::clamp<std::uint64_t>(prefix.size(), from, to);
    xxh3_128 h;
    h.feed_image(prefix.data(), from, zeros_from);
    h.feed_zeros(to - zeros_from);
    t.leaves_[i] = h.finish();
    if (from >= prefix.size() && to - from == t.block_) {
      zero_block = t.leaves_[i];
      zero_block_known = true;
    }
  }
  t.refold_groups();
  put(prefix.data() + kOffChecksum, t.checksum());
  return t;
}

result<header> validate(std::span<const std::byte> image, const seal_tree& tree) {
  FERRY_TRY(header h, read_header(image));
  if (h.version == 1 || !tree.covers(image)) return checked(h, compute_checksum(image));
  return checked(h, tree.checksum());
}

struct seal_stream::block_hash {
  xxh3_128 hash;
};

seal_stream::seal_stream(std::uint64_t image_size) : tree_(image_size), block_(std::make_unique<block_hash>()) {}
seal_stream::seal_stream(seal_stream&&) noexcept = default;
seal_stream& seal_stream::operator=(seal_stream&&) noexcept = default;
seal_stream::~seal_stream() = default;

void seal_stream::feed(std::span<const std::byte> bytes) noexcept {
  const std::uint64_t block = tree_.block_;
  while (!bytes.empty()) {
    const std::uint64_t index = fed_ / block;
    const std::uint64_t block_end = std::min(tree_.image_size_, (index + 1) * block);
    const std::uint64_t n = std::min<std::uint64_t>(bytes.size(), block_end - fed_);
    block_->hash.feed_at(bytes.data(), fed_, n);
    fed_ += n;
    bytes = bytes.subspan(n);
    if (fed_ == block_end) {
      tree_.leaves_[index] = block_->hash.finish();
      block_->hash.reset();
    }
  }
  if (complete()) tree_.refold_groups();
}

void seal_split(std::span<std::byte> head, std::span<const std::byte> rest) {
  put(head.data() + kOffVersion, kFormatVersion);
  seal_stream stream(head.size() + rest.size());
  stream.feed(head);
  stream.feed(rest);
  put(head.data() + kOffChecksum, stream.tree().checksum());
}

void set_fot_count(std::span<std::byte> image, std::uint32_t n) noexcept { put(image.data() + kOffFotCount, n); }
void set_moves(std::span<std::byte> image, std::uint64_t n) noexcept { put(image.data() + kOffMoves, n); }

object_id fot_entry(std::span<const std::byte> image, std::uint32_t slot) noexcept {
  return load_id(image.data() + kHeaderSize + (slot - 1) * kFotEntrySize);
}

void set_fot_entry(std::span<std::byte> image, std::uint32_t slot, object_id id) noexcept {
  put_id(image.data() + kHeaderSize + (slot - 1) * kFotEntrySize, id);
}

}  // namespace ferry::layout
