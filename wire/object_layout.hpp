// Object image layout. docs/object-format.md is the specification;
// this header is its one implementation. Both must change together, and any
// change to the bytes bumps kFormatVersion.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

namespace ferry::layout {

inline constexpr std::uint32_t kMagic = 0x4f595246;  // bytes "FRYO"
inline constexpr std::uint16_t kFormatVersion = 2;
/// Version 1 images (a checksum over the whole image in one pass) are still
/// read; sealing one writes it as the current version.
inline constexpr std::uint16_t kOldestReadableVersion = 1;
inline constexpr std::size_t kHeaderSize = 64;
inline constexpr std::size_t kFotEntrySize = 16;
inline constexpr std::size_t kDataAlign = 64;

// Field offsets inside the 64-byte header (all integers little-endian).
inline constexpr std::size_t kOffMagic = 0;         // u32
inline constexpr std::size_t kOffVersion = 4;       // u16
inline constexpr std::size_t kOffHeaderSize = 6;    // u16
inline constexpr std::size_t kOffId = 8;            // 16 bytes: hi u64, lo u64
inline constexpr std::size_t kOffFotCount = 24;     // u32
inline constexpr std::size_t kOffFotCapacity = 28;  // u32
inline constexpr std::size_t kOffDataSize = 32;     // u64
inline constexpr std::size_t kOffDataOffset = 40;   // u64
inline constexpr std::size_t kOffChecksum = 48;     // u64
inline constexpr std::size_t kOffMoves = 56;        // u64: times the object moved between nodes

/// Decoded header of a validated image.
struct header {
  std::uint16_t version = kFormatVersion;
  object_id id;
  std::uint32_t fot_count = 0;
  std::uint32_t fot_capacity = 0;
  std::uint64_t data_size = 0;
  std::uint64_t data_offset = 0;
  std::uint64_t checksum = 0;
  std::uint64_t moves = 0;
};

/// Where the data starts for a FOT of `fot_capacity` slots.
std::uint64_t data_offset_for(std::uint32_t fot_capacity) noexcept;
/// Total image size for the given shape.
std::uint64_t image_size_for(std::uint32_t fot_capacity, std::uint64_t data_size) noexcept;

/// Write a fresh header (zero FOT, data untouched) into `image`, which must be
/// image_size_for(...) bytes. Does not seal.
void init(std::span<std::byte> image, object_id id, std::uint32_t fot_capacity, std::uint64_t data_size);

/// Read the header without checking the checksum (shape checks only).
result<header> read_header(std::span<const std::byte> image);
/// Shape checks + checksum check: what every untrusted image goes through.
result<header> validate(std::span<const std::byte> image);
class seal_tree;
/// The same checks, the checksum taken from `tree`: the digests of these
/// very bytes, computed as they were written (seal_stream), so the image
/// is not read again. A version-1 image is checked by a pass over it.
result<header> validate(std::span<const std::byte> image, const seal_tree& tree);

// The checksum (docs/object-format.md, "Checksum"). Since version 2 it is
// folded from digests of the image's blocks and of groups of those, so an
// image patched in place is sealed again by hashing only what changed
// (`seal_tree`); version 1 hashed the whole image in one pass.

/// Bytes of one checksum block in an image of `image_size` bytes: 64 KiB, or
/// the power of two that keeps the image within 65536 blocks.
std::uint64_t seal_block_bytes(std::uint64_t image_size) noexcept;
inline constexpr std::uint64_t kSealMinBlockBytes = 64 * 1024;
inline constexpr std::uint64_t kSealMaxBlocks = 65536;
inline constexpr std::uint64_t kSealGroupBlocks = 1024;

/// The checksum the header's version calls for, over the image with the
/// checksum field taken as zero (the image's shape must have been checked).
std::uint64_t compute_checksum(std::span<const std::byte> image);
/// Write the current version and its checksum into the header.
void seal(std::span<std::byte> image);
/// The same for an image held in two pieces: `head` (its first bytes, the
/// header at least, which are written to) and `rest` (the bytes after
/// them, read in place): what seal() would write into the joined image,
/// with no copy of `rest`.
void seal_split(std::span<std::byte> head, std::span<const std::byte> rest);

/// A run of an image's bytes: [offset, offset + length).
struct image_range {
  std::uint64_t offset;
  std::uint64_t length;
};

/// The block and group digests behind a version-2 checksum, kept beside an
/// image that is patched in place (a file store's object): sealing after a
/// patch hashes the blocks the patch touched, their groups and the top, not
/// the whole image. At most 65536 blocks: about 1 MiB of digests for an
/// image of 4 GiB or more, 16 bytes per 64 KiB below.
class seal_tree {
 public:
  using digest = std::array<unsigned char, 16>;
  seal_tree() = default;
  /// The digests of every block of `image` (one pass over it).
  static seal_tree of(std::span<const std::byte> image);
  /// Holds the digests of an image of `image`'s size (false before the
  /// first hashing); a tree serves one image.
  [[nodiscard]] bool covers(std::span<const std::byte> image) const noexcept {
    return !leaves_.empty() && image.size() == image_size_;
  }
  /// Hash again the blocks [offset, offset + length) overlaps and the groups
  /// above them. The tree must cover `image`.
  void patched(std::span<const std::byte> image, std::uint64_t offset, std::uint64_t length);
  /// The same for several ranges of `image`: each block they overlap is
  /// hashed once, however many of them fall in it, and each group above
  /// them folded once, after its blocks.
  void patched(std::span<const std::byte> image, std::span<const image_range> ranges);
  /// Write the current version and the checksum into the header, as seal()
  /// would (upgrading a version-1 image hashes its first block again).
  void seal(std::span<std::byte> image);
  /// The checksum the digests fold into.
  [[nodiscard]] std::uint64_t checksum() const noexcept;

 private:
  friend seal_tree seal_zero_tail(std::span<std::byte>, std::uint64_t);
  friend class seal_stream;
  /// Shaped for an image of `image_size` bytes, no digest computed yet.
  explicit seal_tree(std::uint64_t image_size);
  void refold_group(std::uint64_t group);
  void refold_groups();
  std::uint64_t image_size_ = 0;
  std::uint64_t block_ = 0;
  std::vector<digest> leaves_;
  std::vector<digest> groups_;
};

/// The digests of an image that arrives front to back in pieces (a move's
/// parts): each block is hashed as the piece that completes it is written,
/// while that piece is in cache, so once the last byte is in, the checksum
/// is known without another pass over the image (validate(image, tree)).
class seal_stream {
 public:
  /// For an image of `image_size` bytes, nothing fed yet.
  explicit seal_stream(std::uint64_t image_size);
  seal_stream(seal_stream&&) noexcept;
  seal_stream& operator=(seal_stream&&) noexcept;
  ~seal_stream();
  /// The image's next bytes: [fed(), fed() + bytes.size()), which must not
  /// pass its end.
  void feed(std::span<const std::byte> bytes) noexcept;
  [[nodiscard]] std::uint64_t fed() const noexcept { return fed_; }
  [[nodiscard]] bool complete() const noexcept { return fed_ == tree_.image_size_; }
  /// The digests of the whole image; complete() must be true.
  [[nodiscard]] const seal_tree& tree() const noexcept { return tree_; }

 private:
  struct block_hash;  // the block in progress
  seal_tree tree_;
  std::uint64_t fed_ = 0;
  std::unique_ptr<block_hash> block_;
};

/// Seal an image of `image_size` bytes whose first `prefix.size()` bytes are
/// `prefix` (header and FOT) and whose rest is zero, given only the prefix:
/// a new object is sealed without its data being in memory (or hashed: the
/// zero blocks' digests are computed once). Returns the image's tree.
seal_tree seal_zero_tail(std::span<std::byte> prefix, std::uint64_t image_size);

// Header field setters used by the store when the shape changes.
void set_fot_count(std::span<std::byte> image, std::uint32_t n) noexcept;
/// The object's move count (a move sets it one higher in the image it sends).
void set_moves(std::span<std::byte> image, std::uint64_t n) noexcept;

// FOT slot access; `slot` is 1-based like ptr fot indexes. Caller checks range.
object_id fot_entry(std::span<const std::byte> image, std::uint32_t slot) noexcept;
void set_fot_entry(std::span<std::byte> image, std::uint32_t slot, object_id id) noexcept;

// Little-endian helpers shared with wire code.
std::uint64_t load_u64(const std::byte* p) noexcept;
void store_u64(std::byte* p, std::uint64_t v) noexcept;

}  // namespace ferry::layout
