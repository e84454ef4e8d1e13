// Directory backing: one memory-mapped file per object, `<id>.fobj`, plus a
// redo journal `<id>.fjournal` that makes patch commits crash-atomic:
//
//   commit: write the journal record over the last one, fdatasync it ->
//           patch the mapping, re-seal, fdatasync the file (acknowledged
//           only after that) -> cancel the record by zeroing its magic, not
//           synced: a reseal (writes through the mapping) syncs the cancel
//           before it changes the image, so no replay can undo them.
//   reopen: a complete journal record is replayed (idempotent); a torn or
//           cancelled one is dropped (a torn one's commit was never
//           acknowledged, and the image was not touched before the record
//           was durable).
//
// Whole-image replacement (create, resize, FOT growth, import) writes
// `<id>.fobj.tmp`, fsyncs it, renames it over `<id>.fobj` and fsyncs the
// directory. A pending image (a move's parts, written as they arrive) is
// `pending-<n>.tmp`, mapped; its import fsyncs it and renames it to
// `<id>.fobj`. reopen removes any `.tmp` file: an install or a pending
// image a crash interrupted. Journal record format: docs/object-format.md.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

#include <sodium.h>

#include <fmt/format.h>

#include "backing.hpp"
#include "core/posix_io.hpp"
#include "direct_reader.hpp"
#include "object_layout.hpp"

namespace ferry {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kJournalMagic = 0x4a595246;  // bytes "FRYJ"
constexpr std::size_t kJournalHash = 16;

status os_error(std::string_view what, const fs::path& p, int err = errno) {
  return make_error(errc::io_error, fmt::format("{} {}: {}", what, p.string(), std::strerror(err)));
}

result<void> write_at(int fd, std::span<const std::byte> bytes, std::uint64_t offset, const fs::path& path) {
  if (auto s = core::write_all(fd, bytes, offset); !s.ok())
    return make_error(errc::io_error, fmt::format("{}: {}", path.string(), s.message()));
  return {};
}

result<void> fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error("open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_error("fsync directory", dir, err);
  return {};
}

void journal_hash(std::span<const std::byte> bytes, unsigned char out[kJournalHash]) {
  crypto_generichash(out, kJournalHash, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr, 0);
}

// Journal record: magic u32 | patch count u32 | for each patch: offset u64,
// length u64, bytes | BLAKE2b-128 of everything before.
std::vector<std::byte> encode_journal(std::span<const image_patch> patches) {
  std::size_t n = 8 + kJournalHash;
  for (const auto& p : patches) n += 16 + p.bytes.size();
  std::vector<std::byte> rec(n);
  std::byte* w = rec.data();
  const auto count = static_cast<std::uint32_t>(patches.size());
  std::memcpy(w, &kJournalMagic, 4);
  std::memcpy(w + 4, &count, 4);
  w += 8;
  for (const auto& p : patches) {
    layout::store_u64(w, p.offset);
    layout::store_u64(w + 8, p.bytes.size());
    std::memcpy(w + 16, p.bytes.data(), p.bytes.size());
    w += 16 + p.bytes.size();
  }
  journal_hash({rec.data(), n - kJournalHash}, reinterpret_cast<unsigned char*>(w));
  return rec;
}

// Decode the journal record at the start of `file` (the journal's bytes)
// against an image of `image_size` bytes. The record's patches say where it
// ends; what follows its hash is left from a longer record before it. An
// empty result means "torn, cancelled or foreign: drop it".
std::vector<image_patch> decode_journal(std::span<const std::byte> file, std::size_t image_size) {
  std::vector<image_patch> out;
  if (file.size() < 8 + kJournalHash) return {};
  std::uint32_t magic, count;
  std::memcpy(&magic, file.data(), 4);
  std::memcpy(&count, file.data() + 4, 4);
  if (magic != kJournalMagic) return {};
  std::size_t pos = 8;
  const std::size_t end = file.size() - kJournalHash;  // the latest the hash can start
  for (std::uint32_t i = 0; i < count; ++i) {
    if (pos > end || end - pos < 16) return {};
    const auto off = layout::load_u64(file.data() + pos);
    const auto len = layout::load_u64(file.data() + pos + 8);
    pos += 16;
    if (len > end - pos || off > image_size || image_size - off < len) return {};
    out.push_back({off, file.subspan(pos, len)});
    pos += len;
  }
  if (pos > end) return {};
  unsigned char want[kJournalHash];
  journal_hash(file.first(pos), want);
  if (std::memcmp(want, file.data() + pos, kJournalHash) != 0) return {};
  return out;
}

class file_segment final : public segment {
 public:
  file_segment(fs::path file, fs::path journal, int fd, std::byte* map, std::size_t size)
      : file_(std::move(file)), journal_(std::move(journal)), fd_(fd), map_(map), size_(size) {}
  ~file_segment() override {
    ::munmap(map_, size_);
    if (auto* ro = read_only_.load(std::memory_order_relaxed)) ::munmap(const_cast<std::byte*>(ro), size_);
    ::close(fd_);
    if (jfd_ >= 0) ::close(jfd_);
    if (pending_) ::unlink(file_.c_str());  // a pending image never installed
  }

  // Written with pwrite: a write fault on a shared file mapping costs about
  // 5 µs a page here, against under 1 µs a page for pwrite (64 MiB in 60
  // KiB pieces: 80-90 ms against 14 ms, and its fdatasync 95 against 60).
  result<void> write_pending(std::uint64_t image_offset, std::span<const std::byte> bytes) override {
    return write_at(fd_, bytes, image_offset, file_);
  }

  // A pending image's file (directory_backing::make_pending): removed with
  // the segment until installed_as() names it an object's.
  void mark_pending() { pending_ = true; }
  [[nodiscard]] bool pending() const { return pending_; }
  [[nodiscard]] const fs::path& file() const { return file_; }
  // Every block of the file allocated (a pending image's are, once all of
  // it was written: then this changes nothing), then made durable: an
  // object's file never has holes, so a write through its mapping cannot
  // meet a full disk.
  result<void> allocate_and_sync() {
    if (::fallocate(fd_, 0, 0, static_cast<off_t>(size_)) != 0 && errno != EOPNOTSUPP)
      return os_error("allocate", file_);
    if (::fdatasync(fd_) != 0) return os_error("fdatasync", file_);
    return {};
  }
  void installed_as(fs::path file, fs::path journal) {
    file_ = std::move(file);
    journal_ = std::move(journal);
    pending_ = false;
  }

  std::span<std::byte> image() override { return {map_, size_}; }

  // Mapped on first use (most objects are never viewed), then kept: the
  // page cache is shared with the writable mapping, so it costs address
  // space, not memory, and sees every write made through the other.
  result<std::span<const std::byte>> read_only_image() override {
    auto* ro = read_only_.load(std::memory_order_acquire);
    if (!ro) {
      std::lock_guard lock(read_only_mu_);
      ro = read_only_.load(std::memory_order_relaxed);
      if (!ro) {
        void* m = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
        if (m == MAP_FAILED) return os_error("mmap (read-only)", file_);
        ro = static_cast<const std::byte*>(m);
        read_only_.store(ro, std::memory_order_release);
      }
    }
    return std::span<const std::byte>(ro, size_);
  }

  // The record is written over the last one, at the journal's start, and
  // cancelled once applied by zeroing its magic, not by truncating the
  // journal: the journal keeps its size and pages, so neither its write nor
  // its fdatasync touches metadata. The cancel is not synced: replaying an
  // applied record writes the same bytes again, harmless until the image
  // changes by another way, which is a later commit (whose record replaces
  // it first) or a reseal (which syncs the cancel first).
  result<void> commit(std::span<const image_patch> patches) override {
    if (jfd_ < 0) {
      jfd_ = ::open(journal_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (jfd_ < 0) return os_error("open journal", journal_);
    }
    const auto rec = encode_journal(patches);
    FERRY_TRY_STATUS(write_at(jfd_, rec, 0, journal_));
    if (::fdatasync(jfd_) != 0) return os_error("fdatasync", journal_);
    FERRY_TRY_STATUS(apply(patches));
    static constexpr std::byte cancelled[4] = {};
    FERRY_TRY_STATUS(write_at(jfd_, cancelled, 0, journal_));
    cancel_unsynced_ = true;
    return {};
  }

  // Writes made through the mapping: the last record's cancel is made
  // durable first (a replay after them would undo them), then what they
  // wrote sealed.
  result<void> reseal(std::span<const image_range> written) override {
    if (cancel_unsynced_) {
      if (::fdatasync(jfd_) != 0) return os_error("fdatasync", journal_);
      cancel_unsynced_ = false;
    }
    return seal_and_sync(written);
  }

  // From the file, with O_DIRECT and read ahead for a thread reading in
  // order (direct_reader.hpp); from the mapping where the file system
  // refuses O_DIRECT (tmpfs).
  result<void> read_at_rest(std::uint64_t image_offset, std::span<std::byte> out, bool read_ahead) override {
    FERRY_TRY(auto file, direct());
    if (!file) return segment::read_at_rest(image_offset, out, read_ahead);
    return object::direct_file::read(file, image_offset, out, read_ahead);
  }

  void lend_writable() override { changed(); }

  // The checksum's digests of a new object's image, computed as it was sealed.
  void keep_tree(layout::seal_tree tree) { tree_ = std::move(tree); }

  // Patch, re-seal and make durable: shared by commit and journal replay.
  result<void> apply(std::span<const image_patch> patches) {
    std::vector<image_range> written;
    written.reserve(patches.size());
    for (const auto& p : patches) {
      std::memcpy(map_ + p.offset, p.bytes.data(), p.bytes.size());
      written.push_back({p.offset, p.bytes.size()});
    }
    return seal_and_sync(written);
  }

  // Re-seal after the bytes in `written` changed, and make them durable.
  // With the checksum's digests at hand, only the blocks the ranges touch
  // are hashed; without (the first seal in this process), the whole image.
  // One fdatasync of the file writes every page the mapping dirtied (the
  // ranges' and the header's) with one flush of the device, where an msync
  // per range flushed once per range.
  result<void> seal_and_sync(std::span<const image_range> written) {
    if (!tree_.covers(image())) {
      tree_ = layout::seal_tree::of(image());
    } else {
      tree_.patched(image(), written);
    }
    tree_.seal(image());
    changed();
    if (::fdatasync(fd_) != 0) return os_error("fdatasync", file_);
    return {};
  }

  // Replay a leftover journal, if any (called once, at recovery).
  result<void> replay() {
    std::error_code ec;
    const auto jsize = fs::file_size(journal_, ec);
    if (ec || jsize == 0) return {};
    std::vector<std::byte> rec(jsize);
    const int jfd = ::open(journal_.c_str(), O_RDONLY | O_CLOEXEC);
    if (jfd < 0) return os_error("open journal", journal_);
    const ssize_t r = ::pread(jfd, rec.data(), rec.size(), 0);
    ::close(jfd);
    if (r != static_cast<ssize_t>(rec.size())) return os_error("read journal", journal_);
    const auto patches = decode_journal(rec, size_);
    if (!patches.empty()) FERRY_TRY_STATUS(apply(patches));
    // Emptied durably: a reseal later must not find a record to replay.
    const int wfd = ::open(journal_.c_str(), O_WRONLY | O_CLOEXEC);
    if (wfd < 0) return os_error("open journal", journal_);
    const bool emptied = ::ftruncate(wfd, 0) == 0 && ::fdatasync(wfd) == 0;
    const int err = errno;
    ::close(wfd);
    if (!emptied) return os_error("empty journal", journal_, err);
    return {};
  }

 private:
  // The file opened with O_DIRECT on the first read at rest, then kept;
  // nullptr where its file system refuses O_DIRECT.
  result<std::shared_ptr<object::direct_file>> direct() {
    std::lock_guard lock(direct_mu_);
    if (!direct_ && !no_direct_) {
      auto opened = object::direct_file::open(file_, size_);
      if (!opened && opened.code() != errc::unsupported) return opened.error();
      if (opened) direct_ = std::move(*opened);
      no_direct_ = !opened;
    }
    return direct_;
  }
  // The image changed, or its mapping was lent for writing: bytes read
  // ahead of it before are not used.
  void changed() {
    std::lock_guard lock(direct_mu_);
    if (direct_) direct_->changed();
  }

  fs::path file_, journal_;
  int fd_;
  std::byte* map_;
  std::size_t size_;
  std::atomic<const std::byte*> read_only_{nullptr};
  std::mutex read_only_mu_;
  std::mutex direct_mu_;
  std::shared_ptr<object::direct_file> direct_;
  bool no_direct_ = false;
  int jfd_ = -1;
  bool cancel_unsynced_ = false;  // the journal's last record is cancelled in the page cache only
  bool pending_ = false;           // a pending image's file, not yet an object's
  layout::seal_tree tree_;  // the checksum's digests; empty until the first seal in this process
};

class directory_backing final : public store::backing {
 public:
  explicit directory_backing(fs::path dir) : dir_(std::move(dir)) {}

  std::string describe() const override { return "directory:" + dir_.string(); }

  bool persistent() const override { return true; }

  result<std::unique_ptr<segment>> install(object_id id, std::span<const std::byte> image) override {
    return replace(id, image, image.size());
  }

  result<std::unique_ptr<segment>> install_zero(object_id id, std::span<std::byte> prefix,
                                                std::uint64_t image_size) override {
    // The zero tail is a hole in the file: no bytes written, no memory used.
    auto tree = layout::seal_zero_tail(prefix, image_size);
    FERRY_TRY(auto seg, replace(id, prefix, image_size));
    static_cast<file_segment&>(*seg).keep_tree(std::move(tree));
    return seg;
  }

  result<std::unique_ptr<segment>> adopt(store::backing& from, object_id id) override {
    auto* other = dynamic_cast<directory_backing*>(&from);
    if (other == nullptr) return cannot_adopt("its image is not a file");
    std::error_code ec;
    // A journal belongs to its image; a copy takes the image as it reads now.
    if (fs::exists(other->journal_file(id), ec)) return cannot_adopt("its file has a journal");
    const auto source = other->object_file(id);
    const auto file = object_file(id);
    ::unlink(journal_file(id).c_str());  // one here belongs to no image of this store's
    if (::rename(source.c_str(), file.c_str()) != 0) {
      if (errno == EXDEV) return cannot_adopt("the two stores are on different file systems");
      return os_error("rename", source);
    }
    auto seg = map(id);
    if (auto synced = seg ? fsync_dir(dir_) : result<void>(seg.error()); !synced || !fsync_dir(other->dir_)) {
      ::rename(file.c_str(), source.c_str());  // back where it was: `from` still holds it
      return synced ? os_error("fsync directory", other->dir_) : synced.error();
    }
    return seg;
  }

  // A file in this directory, `pending-<n>.tmp`, of the image's size:
  // the parts of a move's image are written straight into the page cache
  // (write_pending, pwrite), and installing it is a rename. Sparse until
  // written: blocks are taken as parts arrive, so a full disk refuses the
  // part that does not fit (io_error, not SIGBUS: nothing writes through
  // the mapping), and an image size a peer lies about costs no disk.
  result<std::unique_ptr<segment>> make_pending(std::uint64_t image_size) override {
    if (image_size > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()) ||
        image_size > std::numeric_limits<std::size_t>::max())
      return make_error(errc::too_large, fmt::format("an image of {} bytes is larger than a file can be", image_size));
    fs::path tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 64; ++attempt) {
      tmp = dir_ / fmt::format("pending-{}.tmp", next_pending_.fetch_add(1, std::memory_order_relaxed));
      fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno != EEXIST) return os_error("create", tmp);
    }
    if (fd < 0) return os_error("create", tmp);
    if (::ftruncate(fd, static_cast<off_t>(image_size)) != 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return os_error("truncate", tmp, err);
    }
    void* m = ::mmap(nullptr, static_cast<std::size_t>(image_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return os_error("mmap", tmp, err);
    }
    auto seg = std::make_unique<file_segment>(tmp, fs::path{}, fd, static_cast<std::byte*>(m),
                                              static_cast<std::size_t>(image_size));
    seg->mark_pending();
    return std::unique_ptr<segment>(std::move(seg));
  }

  // This directory's pending file: synced, renamed to the object's name
  // (the directory synced), and kept mapped as it is.
  result<std::unique_ptr<segment>> install_pending(object_id id, std::unique_ptr<segment>& pending,
                                                   const layout::seal_tree* tree) override {
    auto* f = dynamic_cast<file_segment*>(pending.get());
    if (f == nullptr || !f->pending() || f->file().parent_path() != dir_) {
      FERRY_TRY(auto seg, install(id, pending->image()));
      if (tree) static_cast<file_segment&>(*seg).keep_tree(*tree);
      return seg;
    }
    FERRY_TRY_STATUS(f->allocate_and_sync());
    const auto file = object_file(id);
    ::unlink(journal_file(id).c_str());  // one here belongs to no image of this store's
    if (::rename(f->file().c_str(), file.c_str()) != 0) return os_error("rename", f->file());
    if (auto synced = fsync_dir(dir_); !synced) {
      ::rename(file.c_str(), f->file().c_str());  // still the pending image
      return synced.error();
    }
    f->installed_as(file, journal_file(id));
    if (tree) f->keep_tree(*tree);  // the first patch hashes what it touched, not the whole image
    return std::move(pending);
  }

 private:
  static status cannot_adopt(std::string_view why) {
    return make_error(errc::unsupported, fmt::format("an object's file cannot be renamed into this store: {}", why));
  }

  // Write `head` then zeros up to `image_size` to <id>.fobj.tmp, fsync it and
  // rename it over <id>.fobj.
  result<std::unique_ptr<segment>> replace(object_id id, std::span<const std::byte> head, std::uint64_t image_size) {
    const auto file = object_file(id);
    fs::path tmp = file;
    tmp += ".tmp";
    const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return os_error("create", tmp);
    auto written = write_at(fd, head, 0, tmp);
    if (written && image_size > head.size()) {
      // Reserve the blocks (a full disk fails here, not as SIGBUS when mobile
      // code writes through the mapping); a file system that cannot reserve
      // gets a sparse file.
      const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(image_size));
      if (rc == EOPNOTSUPP || rc == EINVAL) {
        if (::ftruncate(fd, static_cast<off_t>(image_size)) != 0) written = os_error("truncate", tmp);
      } else if (rc != 0) {
        written = os_error("allocate", tmp, rc);
      }
    }
    if (written && ::fsync(fd) != 0) written = os_error("fsync", tmp);
    ::close(fd);
    if (!written) {
      ::unlink(tmp.c_str());
      return written.error();
    }
    // Any journal belongs to the image being replaced (and is empty unless a
    // crash left it): it must not be replayed onto the new image.
    ::unlink(journal_file(id).c_str());
    if (::rename(tmp.c_str(), file.c_str()) != 0) return os_error("rename", tmp);
    FERRY_TRY_STATUS(fsync_dir(dir_));
    return map(id);
  }

 public:
  result<void> erase(object_id id) override {
    ::unlink(journal_file(id).c_str());
    if (::unlink(object_file(id).c_str()) != 0 && errno != ENOENT) return os_error("unlink", object_file(id));
    return fsync_dir(dir_);
  }

  std::vector<std::pair<object_id, result<std::unique_ptr<segment>>>> recover() override {
    std::vector<std::pair<object_id, result<std::unique_ptr<segment>>>> out;
    std::error_code ec;
    for (const auto& de : fs::directory_iterator(dir_, ec)) {
      const auto& p = de.path();
      if (p.extension() == ".tmp") {  // an install that crashed before rename
        fs::remove(p, ec);
        continue;
      }
      if (p.extension() != ".fobj") continue;
      auto id = object_id::parse(p.stem().string());
      if (!id) continue;  // not a name ferry writes; leave foreign files alone
      auto seg = map(*id);
      if (seg) {
        auto replayed = static_cast<file_segment&>(**seg).replay();
        if (!replayed) seg = replayed.error();
      }
      out.emplace_back(*id, std::move(seg));
    }
    return out;
  }

 private:
  fs::path object_file(object_id id) const { return dir_ / (id.to_string() + ".fobj"); }
  fs::path journal_file(object_id id) const { return dir_ / (id.to_string() + ".fjournal"); }

  result<std::unique_ptr<segment>> map(object_id id) {
    const auto file = object_file(id);
    const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return os_error("open", file);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return os_error("stat", file, err);
    }
    if (st.st_size < static_cast<off_t>(layout::kHeaderSize)) {
      ::close(fd);
      return make_error(errc::bad_format, fmt::format("{} is truncated ({} bytes)", file.string(), st.st_size));
    }
    void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return os_error("mmap", file, err);
    }
    return std::unique_ptr<segment>(std::make_unique<file_segment>(file, journal_file(id), fd, static_cast<std::byte*>(m),
                                                                   static_cast<std::size_t>(st.st_size)));
  }

  fs::path dir_;
  std::atomic<std::uint64_t> next_pending_{0};
};

}  // namespace

result<std::unique_ptr<store::backing>> make_directory_backing(const std::filesystem::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(errc::io_error, fmt::format("cannot create store directory {}: {}", dir.string(), ec.message()));
  if (!fs::is_directory(dir, ec))
    return make_error(errc::io_error, fmt::format("store path {} is not a directory", dir.string()));
  return std::unique_ptr<store::backing>(std::make_unique<directory_backing>(dir));
}

}  // namespace ferry
