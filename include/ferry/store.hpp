// ferry/store.hpp — object stores: where a node keeps its objects.
//
// An object is a header + foreign object table (FOT) + data, stored as one
// contiguous *image* whose byte layout is defined in docs/object-format.md.
// A store holds images; the logic (bounds checks, FOT, checksums, image
// import/export) is the same for every store, only the backing differs:
//
//  * memory store   (`store::open_memory()`): images in process memory.
//  * file store     (`store::open_directory(dir)`): one file per object,
//    `<dir>/<32-hex-id>.fobj`, memory-mapped. Persistent: every mutating call
//    (create, write, resize, fot_add, remove, import) is durable on disk
//    (msync/fsync, and directory fsync for create/remove) before it returns
//    success. Reopening verifies every object's checksum; a damaged object is
//    reported as errc::corrupt (see `damaged()`) and every other object stays
//    readable.
//
// Errors: every call returns ferry::result (see status.hpp). Unknown id ->
// not_found; allocation refused or memory limit reached -> out_of_memory; offset/length outside the data -> out_of_bounds; FOT index the
// object does not have -> bad_fot_index; checksum mismatch -> corrupt;
// unknown format version -> bad_version; bad magic or truncated -> bad_format;
// OS failure -> io_error.
//
// Thread safety: all member functions may be called concurrently. Writes to
// one object wait for each other and hold up copies out of that object
// only; creating, resizing, growing a FOT or removing holds up every
// object briefly. Spans from `local()` bypass the locks: they stay valid until the object is
// resized, gets a new FOT slot beyond its capacity, or is removed, and a
// caller that writes through them must call `flush()` afterwards so the
// checksum (and, for a file store, the disk) reflects the new bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/ref.hpp>
#include <ferry/status.hpp>

namespace ferry {

class segment;  // a backing's bytes of one image (runtime/object/backing.hpp)

/// What a store knows about one object.
struct object_info {
  object_id id;
  std::uint64_t data_size = 0;     ///< bytes of data
  std::uint32_t fot_count = 0;     ///< FOT slots in use
  std::uint32_t fot_capacity = 0;  ///< FOT slots allocated
  std::uint64_t image_size = 0;    ///< header + FOT + data (+ padding), bytes
  std::uint64_t moves = 0;         ///< times the object moved between nodes (its owner's version)
};

/// Options for creating an object.
struct create_options {
  /// FOT slots to reserve up front. More are added on demand by fot_add()
  /// (which then re-lays-out the image and invalidates local() spans).
  std::uint32_t fot_capacity = 4;
};

/// Largest object data size a store accepts (the 48-bit ptr offset range).
inline constexpr std::uint64_t max_object_size = std::uint64_t{1} << 48;
/// Largest FOT: a ptr's 16-bit index, slot 0 being the object itself.
inline constexpr std::uint32_t max_fot_entries = 65535;

class FERRY_API store {
 public:
  /// A store kept in process memory. Never fails.
  static std::unique_ptr<store> open_memory();
  /// A persistent store in `dir` (created if missing). Fails only if the
  /// directory cannot be created or read; damaged objects do not make open
  /// fail, they are listed by damaged() and answer errc::corrupt.
  static result<std::unique_ptr<store>> open_directory(const std::filesystem::path& dir);

  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// "memory" or "directory:/path/to/dir".
  [[nodiscard]] std::string describe() const;
  /// True for a directory store: objects survive the process and their
  /// checksums are kept at rest (so writes through local() need flush()).
  /// A memory store keeps no checksum at rest; its flush() does nothing.
  [[nodiscard]] bool persistent() const;

  /// Limit the bytes of object images this store holds (0: no limit, the
  /// default). create/resize/import/FOT growth that would pass it fail with
  /// errc::out_of_memory; so does an allocation the system refuses.
  void set_memory_limit(std::uint64_t bytes);
  /// Bytes of object images held now (header + FOT + data of every object).
  [[nodiscard]] std::uint64_t memory_used() const;
  /// Count `bytes` held outside the store (a running call's cx.fetch copies)
  /// against the same memory limit while the returned handle lives, so the
  /// limit bounds what a node holds for mobile code, not only its objects;
  /// errc::out_of_memory if they would pass it.
  result<std::shared_ptr<const void>> reserve(std::uint64_t bytes);

  // --- lifecycle -----------------------------------------------------------
  /// New object with a random id and `data_size` zero bytes of data.
  result<object_info> create(std::uint64_t data_size, create_options opts = {});
  /// New object with a chosen id (errc::already_exists if taken).
  result<object_info> create(object_id id, std::uint64_t data_size, create_options opts = {});
  result<object_info> stat(object_id id) const;
  /// Whether stat(id) would succeed, without making its error: what routing
  /// asks once per call (a forwarded call's target is most often elsewhere).
  [[nodiscard]] bool holds(object_id id) const;
  /// Change the data size, keeping the first min(old,new) bytes; new bytes are zero.
  result<object_info> resize(object_id id, std::uint64_t new_data_size);
  result<void> remove(object_id id);
  /// Ids of all readable objects, sorted.
  [[nodiscard]] std::vector<object_id> list() const;
  /// Objects found damaged when the store was opened, with the reason.
  [[nodiscard]] std::vector<std::pair<object_id, status>> damaged() const;
  /// Why `id` is damaged (corrupt, bad_format, bad_version), if it is one of
  /// damaged(); nothing otherwise. Takes no lock and allocates nothing while
  /// the store has no damaged object: routing asks it for every object a
  /// node does not hold.
  [[nodiscard]] std::optional<status> damage_of(object_id id) const;

  // --- data ----------------------------------------------------------------
  result<void> read(object_id id, std::uint64_t offset, std::span<std::byte> out) const;
  result<std::vector<std::byte>> read(object_id id, std::uint64_t offset, std::uint64_t length) const;
  /// Whether the object holds the range: the error a read of it would give
  /// (not_found, out_of_bounds), before the reader sizes a buffer for it.
  result<void> check_range(object_id id, std::uint64_t offset, std::uint64_t length) const;
  result<void> write(object_id id, std::uint64_t offset, std::span<const std::byte> in);
  /// Like read(), but from where the store keeps the object at rest: a file
  /// store reads the object's file with O_DIRECT (page-aligned, bypassing
  /// the page cache; on a storage node that file lives on its device), so
  /// mobile code can stream an object larger than memory in chunks
  /// (`cx.read`). A memory store copies from memory.
  ///
  /// `read_ahead` (cx.read, a synchronous reader streaming an object): a
  /// file store reads ahead for a thread that reads an object in order.
  /// After such a read that starts where the thread's last read of the
  /// object ended, the next 4 MiB are read while the thread works on what
  /// it got (io_uring; without it, every read is synchronous). Bytes read
  /// ahead are dropped when the object changes through the store (write,
  /// flush) or its bytes are handed out for writing (local, pin); a caller
  /// that holds them for writing itself must pass false to see its own
  /// writes. A caller that keeps its own reads in flight passes false too.
  result<void> read_at_rest(object_id id, std::uint64_t offset, std::span<std::byte> out,
                            bool read_ahead = false) const;
  /// The object's data bytes in place (see "Thread safety" above).
  result<std::span<std::byte>> local(object_id id);
  /// The object's data bytes in place, kept mapped while `keep` lives: a
  /// remove or resize meanwhile takes the object out of the store, but the
  /// bytes stay valid memory (writes to them are then lost, never a crash).
  struct pinned_bytes {
    std::span<std::byte> bytes;
    std::shared_ptr<const void> keep;
  };
  result<pinned_bytes> pin(object_id id);
  /// The object's data bytes for reading, kept mapped like pin()'s. A file
  /// store maps the object's file a second time, without write permission:
  /// a write through these bytes faults (SIGSEGV) instead of changing the
  /// object behind its checksum, so they need no flush(). A memory store,
  /// which keeps no checksum at rest, gives its bytes in place.
  struct pinned_view {
    std::span<const std::byte> bytes;
    std::shared_ptr<const void> keep;
  };
  result<pinned_view> pin_read_only(object_id id);
  /// Re-seal the checksum (and persist, for a file store) after writes made
  /// through local(): a file store hashes the whole image.
  result<void> flush(object_id id);
  /// A run of an object's data bytes: [offset, offset + length), from the
  /// start of its data.
  struct data_range {
    std::uint64_t offset;
    std::uint64_t length;
  };
  /// The same after writes made only within `written`: a file store hashes
  /// just the checksum blocks (64 KiB) they touch, so the seal after a
  /// small write costs the same in any object. A write outside them is
  /// not sealed: the object is then found corrupt when next checked (a
  /// reopen, a move), never silently changed. out_of_bounds for a range
  /// outside the object's data.
  result<void> flush(object_id id, std::span<const data_range> written);

  /// Typed conveniences over read/write/local.
  template <class T>
  result<T> load(ref<T> r) const {
    T v;
    FERRY_TRY_STATUS(read(r.id, r.offset, std::as_writable_bytes(std::span<T, 1>(&v, 1))));
    return v;
  }
  template <class T>
  result<void> store_value(ref<T> r, const std::type_identity_t<T>& v) {
    return write(r.id, r.offset, std::as_bytes(std::span<const T, 1>(&v, 1)));
  }
  /// Pointer to a local T at r (bounds-checked for sizeof(T)).
  template <class T>
  result<T*> local_ptr(ref<T> r) {
    FERRY_TRY(auto bytes, local(r.id));
    if (r.offset > bytes.size() || bytes.size() - r.offset < sizeof(T))
      return out_of_range(r.id, r.offset, sizeof(T), bytes.size());
    return reinterpret_cast<T*>(bytes.data() + r.offset);
  }

  // --- foreign object table --------------------------------------------------
  /// FOT slot (1-based) of `target` in `holder`, adding it if absent.
  result<std::uint16_t> fot_add(object_id holder, object_id target);
  /// The id in slot `index` of `holder`'s FOT; index 0 is `holder` itself.
  result<object_id> fot_get(object_id holder, std::uint16_t index) const;
  /// A ptr, to be stored inside `holder`, that points at `target`.
  template <class T>
  result<ptr<T>> make_ptr(object_id holder, ref<T> target) {
    if (target.offset > ptr<T>::max_offset)
      return make_error(errc::out_of_bounds, "offset does not fit a 48-bit ferry::ptr");
    std::uint16_t index = 0;
    if (target.id != holder) {
      FERRY_TRY(index, fot_add(holder, target.id));
    }
    return ptr<T>::make(index, target.offset);
  }
  /// The global reference a ptr stored in `holder` denotes.
  template <class T>
  result<ref<T>> resolve(object_id holder, ptr<T> p) const {
    if (p.is_null()) return make_error(errc::invalid_argument, "resolving a null ferry::ptr");
    FERRY_TRY(object_id target, fot_get(holder, p.fot_index()));
    return ref<T>{target, p.offset()};
  }

  // --- images (byte copies between stores and nodes) -------------------------
  /// The object's canonical image, checksum sealed: the bytes to copy. With
  /// `add_moves`, its moves field (docs/object-format.md) is that much higher
  /// than the stored object's before the one seal: a migration's image.
  result<std::vector<std::byte>> export_image(object_id id, std::uint64_t add_moves = 0) const;
  /// The export's image without a copy of it (a move's parts leave from
  /// it): `image` is the stored image in place, kept mapped while `keep`
  /// lives, and `head` the export's first bytes (its header, `add_moves`
  /// higher and sealed over the whole image), which stand for the first
  /// head.size() bytes of `image`. One pass hashes the image; nothing
  /// copies it. The caller keeps the object from changing while it reads
  /// (a move has frozen it).
  struct image_in_place {
    std::vector<std::byte> head;
    std::span<const std::byte> image;
    std::shared_ptr<const void> keep;
  };
  result<image_in_place> export_image_in_place(object_id id, std::uint64_t add_moves) const;
  /// Verify an image (magic, version, sizes, checksum) and store it under the
  /// id in its header (errc::already_exists if taken).
  result<object_info> import_image(std::span<const std::byte> image);

  /// Room for an image that arrives piece by piece (a move's parts), written
  /// in place and then imported, where the store keeps its images, so that
  /// the import copies nothing: a memory store's is memory, which becomes
  /// the object's image; a directory store's is a file in its directory
  /// (`pending-<n>.tmp`, written with pwrite), which the import syncs and
  /// renames to the object's file. It is removed if the pending
  /// image is dropped, and at the store's next open after a crash. Its
  /// bytes count against the store's memory limit while it lives
  /// (reserve()).
  class pending_image {
   public:
    pending_image();
    pending_image(pending_image&&) noexcept;
    pending_image& operator=(pending_image&&) noexcept;
    ~pending_image();
    /// The image's size in bytes (0 once imported).
    [[nodiscard]] std::uint64_t size() const;
    /// The image's bytes as written so far (zero where nothing was).
    [[nodiscard]] std::span<const std::byte> bytes() const;
    /// Write `bytes` at `offset` of the image: invalid_argument (nothing
    /// written) past its end or once imported; io_error if a directory
    /// store's write fails. Written front to back, the image's checksum is
    /// computed as it is written, and the import checks it without reading
    /// the image again; written in any other order, the import reads it.
    result<void> write(std::uint64_t offset, std::span<const std::byte> bytes);

   private:
    friend class store;
    struct streamed;  // the checksum of what was written front to back
    std::unique_ptr<segment> seg_;
    std::shared_ptr<const void> reserved_;
    std::unique_ptr<streamed> streamed_;
  };
  /// Room for an image of `image_size` bytes (at least a header), zero
  /// until written: out_of_memory past the memory limit, or if the system
  /// refuses memory; bad_format for fewer bytes than an image's header; for
  /// a directory store io_error if the file cannot be made, too_large
  /// beyond a file's size (write() then meets a full disk: io_error).
  result<pending_image> make_pending_image(std::uint64_t image_size);
  /// import_image() of `image`'s bytes without copying them, taking
  /// `image` (left empty) if it is stored; on an error it keeps its bytes
  /// (which may no longer count against the memory limit).
  result<object_info> import_image(pending_image& image);
  /// Move object `id` out of `from` into this store; it leaves `from` only
  /// once it is here. Between two stores that keep their images in memory
  /// (neither persistent) the image changes hands: nothing is copied, and
  /// pointers into it stay valid. Between two directory stores on one file
  /// system its file is renamed into this store's directory (both
  /// directories synced): nothing is copied, and at every instant, a crash
  /// included, the object is in exactly one of them (an object with a
  /// journal file, which a patch leaves, is copied). Otherwise it is copied
  /// (copy_object: durable here first, for a persistent store) and then
  /// removed from `from`. Errors: not_found (or the object's damage) from
  /// `from`, already_exists, out_of_memory (this store's limit), io_error
  /// (a rename or sync that failed): the object then stays in `from`; or
  /// the error of a copy's removal, the object then in both.
  result<object_info> take(store& from, object_id id);

  class backing;  // memory or directory; see runtime/object/

 private:
  explicit store(std::unique_ptr<backing> b);
  static status out_of_range(object_id id, std::uint64_t off, std::uint64_t len, std::uint64_t size);
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Copy one object from one store to another, byte for byte (its ptrs keep
/// working because they go through its FOT, which travels with it).
FERRY_API result<object_info> copy_object(const store& from, store& to, object_id id);

}  // namespace ferry
