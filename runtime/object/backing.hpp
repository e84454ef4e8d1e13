// How a store keeps object images: the only part that differs between the
// memory store and the file (directory) store. All object logic lives in
// store.cpp; a backing only allocates, patches and persists bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <ferry/store.hpp>

#include "object_layout.hpp"

namespace ferry {

/// A run of bytes to place at `offset` in an image.
struct image_patch {
  std::uint64_t offset;
  std::span<const std::byte> bytes;
};

using layout::image_range;

/// One object's image bytes, owned by a backing.
class segment {
 public:
  virtual ~segment() = default;
  virtual std::span<std::byte> image() = 0;
  /// The same bytes, for reading only. A persistent backing gives a second
  /// mapping without write permission, so a write through it faults instead
  /// of changing the image behind its checksum; the default is image().
  virtual result<std::span<const std::byte>> read_only_image();
  /// Apply `patches`, re-seal the checksum; for a persistent backing the
  /// result is durable and crash-atomic (all patches or none) on return.
  virtual result<void> commit(std::span<const image_patch> patches) = 0;
  /// Re-seal the checksum after writes made through image() within
  /// `written` (each inside the image), and persist them. A backing that
  /// keeps the checksum's digests hashes only the blocks these touch (all
  /// of the image once per process, for its first seal): a write outside
  /// them leaves the checksum wrong, and the object is found corrupt when
  /// it is next checked.
  virtual result<void> reseal(std::span<const image_range> written) = 0;
  /// Copy image bytes [image_offset, +out.size()) into `out` from where the
  /// backing keeps them at rest (a file store: its file, with O_DIRECT, so
  /// streaming a large object neither fills the page cache nor touches the
  /// object's mapping; `read_ahead`: a thread reading in order has the next
  /// blocks read meanwhile, direct_reader.hpp). The default copies from
  /// image().
  virtual result<void> read_at_rest(std::uint64_t image_offset, std::span<std::byte> out, bool read_ahead);
  /// image() is about to be handed out for writing: bytes a backing read
  /// ahead at rest may stop being the image's. The default has none.
  virtual void lend_writable() {}
  /// Write `bytes` at `image_offset` of an image not installed yet (a
  /// pending image, store::backing::make_pending): no journal, no seal. The
  /// default copies into image(); a file's segment writes through its
  /// descriptor, which faults no page of its mapping in.
  virtual result<void> write_pending(std::uint64_t image_offset, std::span<const std::byte> bytes);
};

class store::backing {
 public:
  virtual ~backing() = default;
  [[nodiscard]] virtual std::string describe() const = 0;
  /// Make `image` (already sealed) the object's image, atomically replacing
  /// any previous one; durable on return for a persistent backing.
  virtual result<std::unique_ptr<segment>> install(object_id id, std::span<const std::byte> image) = 0;
  /// Make a new image of `image_size` bytes the object's image: `prefix`
  /// (header and FOT, not sealed) followed by zero bytes, without building
  /// the whole image in memory. A backing that keeps checksums at rest seals
  /// it (in `prefix` too). Same durability as install().
  virtual result<std::unique_ptr<segment>> install_zero(object_id id, std::span<std::byte> prefix,
                                                        std::uint64_t image_size) = 0;
  /// Make the image `from` keeps for `id` this backing's without copying
  /// its bytes (a directory store's file renamed into this one's directory,
  /// on the same file system); durable on return, and then gone from
  /// `from`'s files (the store drops `from`'s entry). unsupported when it
  /// cannot: the store copies instead. The default cannot.
  virtual result<std::unique_ptr<segment>> adopt(store::backing& from, object_id id);
  /// Zero bytes for an image of `image_size` bytes that will be written in
  /// place and then installed (store::pending_image): where this backing
  /// would keep the image, so that install_pending() need not copy it. The
  /// default is process memory (make_memory_segment); a directory store's
  /// is a sparse file in its directory under a temporary name, removed with
  /// the segment unless installed, and by recover() after a crash.
  virtual result<std::unique_ptr<segment>> make_pending(std::uint64_t image_size);
  /// Make `pending` (whose bytes are a whole sealed image) the object's
  /// image; durable on return for a persistent backing. One made by this
  /// backing's make_pending() is taken as it is (`pending` left empty), any
  /// other copied as install() copies. On an error `pending` keeps its bytes.
  /// `tree`, if given, holds the digests of the image's bytes (computed as
  /// they were written), for a backing that keeps checksums at rest.
  virtual result<std::unique_ptr<segment>> install_pending(object_id id, std::unique_ptr<segment>& pending,
                                                           const layout::seal_tree* tree);
  /// True if images survive the process (and checksums are kept at rest).
  [[nodiscard]] virtual bool persistent() const = 0;
  /// Forget the object; durable on return.
  virtual result<void> erase(object_id id) = 0;
  /// Objects that already exist (a reopened directory). The store validates
  /// each image; an entry that could not even be mapped carries its error.
  virtual std::vector<std::pair<object_id, result<std::unique_ptr<segment>>>> recover() = 0;
};

std::unique_ptr<store::backing> make_memory_backing();
/// Zeroed process memory for an image of `size` bytes (the memory backing's
/// kind, huge pages from 2 MiB): a store's pending images (store::pending_image).
result<std::unique_ptr<segment>> make_memory_segment(std::uint64_t size);
result<std::unique_ptr<store::backing>> make_directory_backing(const std::filesystem::path& dir);

}  // namespace ferry
