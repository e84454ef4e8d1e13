// Store behaviour shared by every backing: each case runs on memory and
// directory stores.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <ferry/store.hpp>

#include "core/anonymous_mapping.hpp"
#include "test_util.hpp"

using namespace ferry;

namespace {

// Node of a linked list whose links are position-independent pointers.
struct list_node {
  std::uint64_t value;
  ptr<list_node> next;
};

struct store_fixture {
  test::temp_dir dir;
  std::unique_ptr<store> open(bool persistent) {
    if (!persistent) return store::open_memory();
    return REQUIRE_OK(store::open_directory(dir.path() / "objects"));
  }
};

std::span<const std::byte> bytes_of(const auto& v) { return std::as_bytes(std::span(&v, 1)); }

// Build a 9-node list spread over 3 objects (3 nodes each), links crossing
// objects through FOT slots. Returns the head reference.
ref<list_node> build_list(store& st, std::vector<object_id>& ids) {
  for (int o = 0; o < 3; ++o) ids.push_back(REQUIRE_OK(st.create(3 * sizeof(list_node), {.fot_capacity = 1})).id);
  for (int i = 0; i < 9; ++i) {
    const object_id holder = ids[i / 3];
    ref<list_node> self{holder, (i % 3) * sizeof(list_node)};
    list_node n{static_cast<std::uint64_t>(100 + i), {}};
    if (i + 1 < 9) {
      ref<list_node> next{ids[(i + 1) / 3], ((i + 1) % 3) * sizeof(list_node)};
      n.next = REQUIRE_OK(st.make_ptr(holder, next));
    }
    REQUIRE_OK(st.store_value(self, n));
  }
  return {ids[0], 0};
}

std::vector<std::uint64_t> traverse(const store& st, ref<list_node> at) {
  std::vector<std::uint64_t> values;
  for (int guard = 0; guard < 100; ++guard) {
    auto n = REQUIRE_OK(st.load(at));
    values.push_back(n.value);
    if (n.next.is_null()) break;
    at = REQUIRE_OK(st.resolve(at.id, n.next));
  }
  return values;
}

const std::vector<std::uint64_t> kExpected{100, 101, 102, 103, 104, 105, 106, 107, 108};

}  // namespace

TEST_CASE_FIXTURE(store_fixture, "store: create, write, read, resize, remove") {
  for (bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    auto info = REQUIRE_OK(st->create(100));
    CHECK(info.data_size == 100);
    const char msg[] = "hello, object";
    REQUIRE_OK(st->write(info.id, 10, std::as_bytes(std::span(msg))));
    auto back = REQUIRE_OK(st->read(info.id, 10, sizeof msg));
    CHECK(std::memcmp(back.data(), msg, sizeof msg) == 0);
    auto zeros = REQUIRE_OK(st->read(info.id, 0, 10));
    CHECK(std::all_of(zeros.begin(), zeros.end(), [](std::byte b) { return b == std::byte{0}; }));

    auto grown = REQUIRE_OK(st->resize(info.id, 4096));
    CHECK(grown.data_size == 4096);
    back = REQUIRE_OK(st->read(info.id, 10, sizeof msg));
    CHECK(std::memcmp(back.data(), msg, sizeof msg) == 0);
    REQUIRE_OK(st->resize(info.id, 12));
    CHECK_ERRC(st->read(info.id, 10, sizeof msg), errc::out_of_bounds);

    CHECK(st->list() == std::vector<object_id>{info.id});
    CHECK(st->holds(info.id));
    REQUIRE_OK(st->remove(info.id));
    CHECK(st->list().empty());
    CHECK_ERRC(st->stat(info.id), errc::not_found);
    CHECK_FALSE(st->holds(info.id));
  }
}

TEST_CASE_FIXTURE(store_fixture, "store: a list spanning 3 objects traverses through the FOT") {
  for (bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    std::vector<object_id> ids;
    auto head = build_list(*st, ids);
    CHECK(traverse(*st, head) == kExpected);
    // Capacity 1 forced the FOT of objects to grow? Each object points only
    // at the next one, so one slot each suffices; adding more grows the FOT.
    CHECK(REQUIRE_OK(st->stat(ids[0])).fot_count == 1);
    auto extra = REQUIRE_OK(st->create(8)).id;
    CHECK(REQUIRE_OK(st->fot_add(ids[0], extra)) == 2);
    CHECK(REQUIRE_OK(st->fot_add(ids[0], extra)) == 2);  // existing slot reused
    CHECK(REQUIRE_OK(st->stat(ids[0])).fot_capacity >= 2);
    CHECK(traverse(*st, head) == kExpected);  // data survived the re-layout
  }
}

TEST_CASE_FIXTURE(store_fixture, "store: byte copies into another store keep every pointer valid") {
  auto src = open(false);
  std::vector<object_id> ids;
  auto head = build_list(*src, ids);
  auto dst = open(true);
  for (auto id : ids) REQUIRE_OK(copy_object(*src, *dst, id));
  CHECK(traverse(*dst, head) == kExpected);
  // And back again into a third, fresh memory store, via raw image bytes.
  auto third = store::open_memory();
  for (auto id : ids) {
    auto image = REQUIRE_OK(dst->export_image(id));
    REQUIRE_OK(third->import_image(image));
  }
  CHECK(traverse(*third, head) == kExpected);
}

TEST_CASE_FIXTURE(store_fixture, "store: an image exported for a move counts it, sealed once") {
  for (bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    const auto id = REQUIRE_OK(st->create(64)).id;
    const std::byte data[4]{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    REQUIRE_OK(st->write(id, 8, data));
    auto plain = store::open_memory(), moved = store::open_memory(), twice = store::open_memory();
    CHECK(REQUIRE_OK(plain->import_image(REQUIRE_OK(st->export_image(id)))).moves == 0);
    // The raised moves field is covered by the checksum: the image imports.
    CHECK(REQUIRE_OK(moved->import_image(REQUIRE_OK(st->export_image(id, 1)))).moves == 1);
    CHECK(REQUIRE_OK(twice->import_image(REQUIRE_OK(moved->export_image(id, 2)))).moves == 3);
    std::byte back[4]{};
    REQUIRE_OK(twice->read(id, 8, back));
    CHECK(std::memcmp(back, data, sizeof data) == 0);
    CHECK(REQUIRE_OK(st->stat(id)).moves == 0);  // the stored object is not touched
    // In place (a move's parts leave from it): the export's header over the
    // stored bytes is the exported image, byte for byte, for one block and
    // for several; the stored object is untouched.
    const auto big = REQUIRE_OK(st->create(200000)).id;
    std::vector<std::byte> fill(200000);
    for (std::size_t i = 0; i < fill.size(); ++i) fill[i] = static_cast<std::byte>(i * 11 + 1);
    REQUIRE_OK(st->write(big, 0, fill));
    for (const object_id which : {id, big}) {
      const auto as_bytes = REQUIRE_OK(st->export_image(which, 1));
      const auto in_place = REQUIRE_OK(st->export_image_in_place(which, 1));
      REQUIRE(in_place.image.size() == as_bytes.size());
      std::vector<std::byte> joined(in_place.image.begin(), in_place.image.end());
      std::copy(in_place.head.begin(), in_place.head.end(), joined.begin());
      CHECK(joined == as_bytes);
      CHECK(REQUIRE_OK(store::open_memory()->import_image(joined)).moves == 1);  // sealed, the moves field raised
      CHECK(REQUIRE_OK(st->stat(which)).moves == 0);
    }
    CHECK_ERRC(st->export_image_in_place(object_id::random(), 1), errc::not_found);
  }
}

TEST_CASE_FIXTURE(store_fixture, "store: bad input gets a typed error") {
  for (bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    const auto id = REQUIRE_OK(st->create(64)).id;
    const auto nobody = object_id::random();
    std::byte buf[16]{};

    SUBCASE("unknown id") {
      CHECK_ERRC(st->stat(nobody), errc::not_found);
      CHECK_ERRC(st->read(nobody, 0, buf), errc::not_found);
      CHECK_ERRC(st->write(nobody, 0, buf), errc::not_found);
      CHECK_ERRC(st->remove(nobody), errc::not_found);
      CHECK_ERRC(st->local(nobody), errc::not_found);
      CHECK_ERRC(st->export_image(nobody), errc::not_found);
    }
    SUBCASE("offset and length out of bounds") {
      CHECK_ERRC(st->read(id, 60, buf), errc::out_of_bounds);
      CHECK_ERRC(st->write(id, 65, std::span<const std::byte>(buf, 0)), errc::out_of_bounds);
      CHECK_ERRC(st->read(id, ~std::uint64_t{0}, buf), errc::out_of_bounds);
      CHECK_ERRC(st->read(id, 8, ~std::uint64_t{0}), errc::out_of_bounds);  // no huge allocation
      CHECK_ERRC(st->local_ptr(ref<std::uint64_t>{id, 60}), errc::out_of_bounds);
      REQUIRE_OK(st->write(id, 48, buf));  // exactly up to the end is fine
    }
    SUBCASE("wrong FOT index") {
      CHECK_ERRC(st->fot_get(id, 1), errc::bad_fot_index);
      CHECK_ERRC(st->resolve(id, ptr<int>::make(7, 0)), errc::bad_fot_index);
      CHECK_ERRC(st->resolve(id, ptr<int>{}), errc::invalid_argument);
      CHECK(REQUIRE_OK(st->resolve(id, ptr<int>::make(0, 8))) == ref<int>{id, 8});
    }
    SUBCASE("invalid creation") {
      CHECK_ERRC(st->create(id, 8), errc::already_exists);
      CHECK_ERRC(st->create(object_id{}, 8), errc::invalid_argument);
      CHECK_ERRC(st->create(max_object_size + 1), errc::invalid_argument);
    }
    SUBCASE("malformed images") {
      auto image = REQUIRE_OK(st->export_image(id));
      auto other = store::open_memory();
      auto truncated = image;
      truncated.resize(image.size() - 1);
      CHECK_ERRC(other->import_image(truncated), errc::bad_format);
      CHECK_ERRC(other->import_image(std::span(image).first(10)), errc::bad_format);
      auto flipped = image;
      flipped[image.size() - 3] ^= std::byte{0x10};
      CHECK_ERRC(other->import_image(flipped), errc::corrupt);
      auto bad_magic = image;
      bad_magic[0] = std::byte{'X'};
      CHECK_ERRC(other->import_image(bad_magic), errc::bad_format);
      auto future_version = image;
      future_version[4] = std::byte{9};
      CHECK_ERRC(other->import_image(future_version), errc::bad_version);
      CHECK_ERRC(st->import_image(image), errc::already_exists);
      REQUIRE_OK(other->import_image(image));
    }
  }
}

TEST_CASE_FIXTURE(store_fixture, "store: take hands an object over between memory stores without a copy, and copies otherwise") {
  // A move's destination makes its pending image the object this way
  // (object::migration::on_commit): in memory, a large image is not copied
  // into fresh pages a second time.
  auto from = store::open_memory();
  auto to = store::open_memory();
  std::vector<object_id> ids;
  const auto head = build_list(*from, ids);
  const auto big = REQUIRE_OK(from->create(4 << 20)).id;  // a mapping of its own (memory_backing)
  const std::uint64_t marker = 0x7a6b;
  REQUIRE_OK(from->write(big, (4 << 20) - 8, bytes_of(marker)));
  auto* before = REQUIRE_OK(from->local_ptr(ref<std::uint64_t>{big, (4 << 20) - 8}));
  const auto used = from->memory_used();
  for (auto id : ids) REQUIRE_OK(to->take(*from, id));
  const auto taken = REQUIRE_OK(to->take(*from, big));
  CHECK(taken.id == big);
  CHECK(REQUIRE_OK(to->local_ptr(ref<std::uint64_t>{big, (4 << 20) - 8})) == before);  // the same bytes, not a copy
  CHECK(*before == marker);
  CHECK(traverse(*to, head) == kExpected);
  CHECK(from->list().empty());
  CHECK(from->memory_used() == 0);
  CHECK(to->memory_used() == used);
  CHECK_ERRC(to->take(*from, big), errc::not_found);

  // Refused: the object stays where it was.
  auto full = store::open_memory();
  full->set_memory_limit(1 << 20);
  CHECK_ERRC(full->take(*to, big), errc::out_of_memory);
  REQUIRE_OK(from->import_image(REQUIRE_OK(to->export_image(ids[0]))));
  CHECK_ERRC(to->take(*from, ids[0]), errc::already_exists);
  CHECK(from->stat(ids[0]).has_value());
  CHECK(REQUIRE_OK(to->load(ref<std::uint64_t>{big, (4 << 20) - 8})) == marker);

  // With a persistent store on either side it is a copy, then a removal.
  auto disk = open(true);
  REQUIRE_OK(disk->take(*to, big));
  CHECK_ERRC(to->stat(big), errc::not_found);
  CHECK(REQUIRE_OK(disk->load(ref<std::uint64_t>{big, (4 << 20) - 8})) == marker);
  REQUIRE_OK(to->take(*disk, big));
  CHECK(REQUIRE_OK(to->load(ref<std::uint64_t>{big, (4 << 20) - 8})) == marker);
  disk.reset();
  CHECK(open(true)->list().empty());  // gone from the directory too
}

TEST_CASE("store: writes through local() are covered by export after flush") {
  auto st = store::open_memory();
  auto id = REQUIRE_OK(st->create(sizeof(std::uint64_t) * 4)).id;
  auto* p = REQUIRE_OK(st->local_ptr(ref<std::uint64_t>{id, 8}));
  *p = 0xfeedULL;
  REQUIRE_OK(st->flush(id));
  auto other = store::open_memory();
  REQUIRE_OK(copy_object(*st, *other, id));
  CHECK(REQUIRE_OK(other->load(ref<std::uint64_t>{id, 8})) == 0xfeedULL);
}

TEST_CASE_FIXTURE(store_fixture, "store: a memory limit counts image bytes, and new objects are zero and sealed") {
  for (bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    CHECK(st->persistent() == persistent);
    CHECK(st->memory_used() == 0);
    st->set_memory_limit(3 << 20);
    const auto a = REQUIRE_OK(st->create(2 << 20));
    CHECK(st->memory_used() == a.image_size);
    CHECK_ERRC(st->create(2 << 20), errc::out_of_memory);
    CHECK_ERRC(st->resize(a.id, 4 << 20), errc::out_of_memory);
    // A large new object reads as zeros and exports as a valid image.
    auto bytes = REQUIRE_OK(st->read(a.id, (2 << 20) - 16, 16));
    CHECK(bytes == std::vector<std::byte>(16));
    auto other = store::open_memory();
    REQUIRE_OK(copy_object(*st, *other, a.id));
    REQUIRE_OK(st->remove(a.id));
    CHECK(st->memory_used() == 0);
    const auto b = REQUIRE_OK(st->create(2 << 20));
    st->set_memory_limit(0);
    REQUIRE_OK(st->resize(b.id, 4 << 20));
    CHECK(st->memory_used() == REQUIRE_OK(st->stat(b.id)).image_size);
  }
  // Reopened, a directory store's new object validates (its checksum covers the zero tail).
  auto again = open(true);
  CHECK(again->damaged().empty());
  CHECK(again->list().size() == 1);
  CHECK(again->memory_used() == REQUIRE_OK(again->stat(again->list().front())).image_size);
}

// A move's image arrives in parts, written in place into a pending image
// (runtime/object/migration.cpp): a memory store keeps that memory as the
// object's image, a directory store the file it wrote them to.
TEST_CASE_FIXTURE(store_fixture, "store: a pending image is written in place and imported, kept as it is") {
  auto source = store::open_memory();
  const auto made = REQUIRE_OK(source->create(3 << 20));
  auto data = REQUIRE_OK(source->local(made.id));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 31 + 7);
  const auto image = REQUIRE_OK(source->export_image(made.id, 1));
  for (const bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    st->set_memory_limit(made.image_size + (1 << 20));
    CHECK_ERRC(st->make_pending_image(63), errc::bad_format);  // not even a header
    auto pending = REQUIRE_OK(st->make_pending_image(image.size()));
    REQUIRE(pending.size() == image.size());
    CHECK_ERRC(st->reserve(2 << 20), errc::out_of_memory);  // counted while it lives
    CHECK_ERRC(st->make_pending_image(image.size()), errc::out_of_memory);
    CHECK_ERRC(pending.write(image.size() - 8, std::span(image).first(16)), errc::invalid_argument);  // past its end
    // Written front to back in a move's parts (its checksum computed as it
    // is written), one byte of it wrong: refused, kept.
    auto wrong = image;
    const std::size_t bad = image.size() / 2 + 3;
    wrong[bad] ^= std::byte{1};
    for (std::size_t at = 0; at < image.size(); at += 61440)
      REQUIRE_OK(pending.write(at, std::span(wrong).subspan(at, std::min<std::size_t>(61440, image.size() - at))));
    CHECK(pending.bytes()[bad] == wrong[bad]);
    CHECK_ERRC(st->import_image(pending), errc::corrupt);
    REQUIRE(pending.size() == image.size());
    // The byte put right, out of order (the import then reads the image): taken.
    REQUIRE_OK(pending.write(bad, std::span(image).subspan(bad, 1)));
    const std::byte* const place = pending.bytes().data();
    const auto info = REQUIRE_OK(st->import_image(pending));
    CHECK(pending.size() == 0);  // taken
    CHECK_ERRC(pending.write(0, std::span(image).first(8)), errc::invalid_argument);
    CHECK(info.id == made.id);
    CHECK(info.moves == 1);
    CHECK(st->memory_used() == image.size());
    const auto kept = REQUIRE_OK(st->local(made.id));
    CHECK(std::equal(kept.begin(), kept.end(), data.begin(), data.end()));
    // Kept where it was written: memory, or the mapping of the renamed file.
    CHECK(kept.data() == place + (image.size() - data.size()));
    CHECK_ERRC(st->import_image(pending), errc::invalid_argument);  // nothing left to import
    REQUIRE_OK(st->remove(made.id));
  }
}

// A directory store writes a pending image straight into a file of its
// own: the import renames it, nothing copies it, and a dropped one or one a
// crash left behind is removed.
TEST_CASE_FIXTURE(store_fixture, "store: a directory store's pending image is a file its import renames") {
  auto source = store::open_memory();
  const auto made = REQUIRE_OK(source->create(1 << 20));
  auto data = REQUIRE_OK(source->local(made.id));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 3);
  const auto image = REQUIRE_OK(source->export_image(made.id));
  const auto objects = dir.path() / "objects";
  const auto pending_files = [&] {
    std::vector<std::filesystem::path> found;
    for (const auto& e : std::filesystem::directory_iterator(objects))
      if (e.path().extension() == ".tmp") found.push_back(e.path());
    return found;
  };
  const auto inode = [](const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : ino_t{0};
  };
  auto st = open(true);
  {
    auto dropped = REQUIRE_OK(st->make_pending_image(image.size()));
    REQUIRE(pending_files().size() == 1);
  }
  CHECK(pending_files().empty());  // dropped unimported: its file with it
  auto pending = REQUIRE_OK(st->make_pending_image(image.size()));
  const auto files = pending_files();
  REQUIRE(files.size() == 1);
  CHECK(std::filesystem::file_size(files[0]) == image.size());
  REQUIRE_OK(pending.write(0, image));
  {  // the bytes written are the file's
    std::vector<std::byte> on_disk(image.size());
    std::FILE* f = std::fopen(files[0].c_str(), "rb");
    REQUIRE(f != nullptr);
    CHECK(std::fread(on_disk.data(), 1, on_disk.size(), f) == on_disk.size());
    std::fclose(f);
    CHECK(on_disk == image);
  }
  const auto was = inode(files[0]);
  REQUIRE_OK(st->import_image(pending));
  CHECK(pending_files().empty());
  CHECK(inode(objects / (made.id.to_string() + ".fobj")) == was);  // renamed, not copied
  // A pending image a crash left (a child that exits without cleaning up):
  // removed when the store opens again, and the object is sound.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto left = st->make_pending_image(image.size());
    ::_exit(left && pending_files().size() == 1 ? 0 : 1);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(child, &wstatus, 0) == child);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  CHECK(pending_files().size() == 1);
  st.reset();
  auto again = open(true);
  CHECK(pending_files().empty());
  CHECK(again->damaged().empty());
  const auto kept = REQUIRE_OK(again->local(made.id));
  CHECK(std::equal(kept.begin(), kept.end(), data.begin(), data.end()));
}

// A pending file is sparse until written: a full disk refuses the part that
// does not fit with a typed error (not SIGBUS), and the store goes on.
TEST_CASE("store: a directory store's pending image on a full disk: the write that does not fit is io_error") {
  test::temp_dir dir;
  const auto small = dir.path() / "small";
  std::filesystem::create_directories(small);
  const test::small_tmpfs disk(small, "1m");
  if (!disk.mounted()) {
    MESSAGE("skipped: ", disk.why());
    return;
  }
  auto st = REQUIRE_OK(store::open_directory(small / "objects"));
  auto pending = REQUIRE_OK(st->make_pending_image(std::uint64_t{64} << 20));  // a 64 MiB claim on a 1 MiB disk
  std::vector<std::byte> part(61440, std::byte{0x5a});
  result<void> written;
  std::uint64_t at = 0;
  for (; at < pending.size() && written; at += part.size()) written = pending.write(at, part);
  CHECK_ERRC(written, errc::io_error);
  CHECK(at <= (std::uint64_t{2} << 20));  // refused near the disk's size, not after the claim
  CHECK_ERRC(st->import_image(pending), errc::bad_format);  // not an image: refused, kept
  pending = store::pending_image{};  // dropped: its file and blocks with it
  const auto made = REQUIRE_OK(st->create(600 << 10));  // fits only in the space it held
  CHECK(REQUIRE_OK(st->read(made.id, 0, 1000)).size() == 1000);
}

// A persistent node's pending image becomes live by store::take from its
// incoming store (runtime/object/migration.cpp, on_commit).
TEST_CASE("store: take between directory stores renames the object's file, and copies when it cannot") {
  test::temp_dir dir;
  char shm_template[] = "/dev/shm/ferry-test-XXXXXX";  // another file system: a rename cannot cross it
  REQUIRE(::mkdtemp(shm_template) != nullptr);
  const std::filesystem::path elsewhere(shm_template);
  struct removed {
    std::filesystem::path p;
    ~removed() { std::filesystem::remove_all(p); }
  } cleanup{elsewhere};
  const auto inode = [](const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : ino_t{0};
  };
  const auto file_of = [](const std::filesystem::path& d, object_id id) { return d / (id.to_string() + ".fobj"); };
  std::vector<std::byte> data(200000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 13 + 5);
  const auto make = [&](store& st) {
    const auto made = REQUIRE_OK(st.create(data.size()));
    std::memcpy(REQUIRE_OK(st.local(made.id)).data(), data.data(), data.size());
    REQUIRE_OK(st.flush(made.id));
    return made.id;
  };
  {
    auto incoming = REQUIRE_OK(store::open_directory(dir.path() / "incoming"));
    auto live = REQUIRE_OK(store::open_directory(dir.path() / "live"));
    auto far = REQUIRE_OK(store::open_directory(elsewhere));
    // Renamed: the same file (inode), gone from where it was.
    const auto renamed = make(*incoming);
    const auto was = inode(file_of(dir.path() / "incoming", renamed));
    REQUIRE(was != 0);
    REQUIRE_OK(live->take(*incoming, renamed));
    CHECK(inode(file_of(dir.path() / "live", renamed)) == was);
    CHECK(inode(file_of(dir.path() / "incoming", renamed)) == 0);
    CHECK_ERRC(incoming->stat(renamed), errc::not_found);
    CHECK(incoming->memory_used() == 0);
    CHECK(REQUIRE_OK(live->read(renamed, 0, data.size())) == data);
    // Patched after the take: the new store's file takes the patch.
    REQUIRE_OK(live->write(renamed, 0, std::span<const std::byte>(data.data() + 1, 1)));
    // Across file systems, and with a journal (left by that patch): copied.
    REQUIRE_OK(far->take(*live, renamed));
    CHECK(inode(file_of(dir.path() / "live", renamed)) == 0);
    auto patched = data;
    patched[0] = data[1];
    CHECK(REQUIRE_OK(far->read(renamed, 0, data.size())) == patched);
    const auto crossing = make(*far);
    REQUIRE_OK(live->take(*far, crossing));
    CHECK(REQUIRE_OK(live->read(crossing, 0, data.size())) == data);
    CHECK_ERRC(far->stat(crossing), errc::not_found);
    // Taken twice: the second finds it gone.
    CHECK_ERRC(live->take(*incoming, renamed), errc::not_found);
  }
  // Reopened: each object in exactly one store, sound.
  auto incoming = REQUIRE_OK(store::open_directory(dir.path() / "incoming"));
  auto live = REQUIRE_OK(store::open_directory(dir.path() / "live"));
  auto far = REQUIRE_OK(store::open_directory(elsewhere));
  CHECK(incoming->list().empty());
  CHECK(live->list().size() == 1);
  CHECK(far->list().size() == 1);
  CHECK(live->damaged().empty());
  CHECK(far->damaged().empty());
}

TEST_CASE("store: reservations (a call's cx.fetch copies) count against the memory limit until released") {
  auto st = store::open_memory();
  st->set_memory_limit(4 << 20);
  const auto a = REQUIRE_OK(st->create(1 << 20));
  {
    auto held = REQUIRE_OK(st->reserve(2 << 20));
    CHECK_ERRC(st->reserve(2 << 20), errc::out_of_memory);      // object + held + this > limit
    CHECK_ERRC(st->create(2 << 20), errc::out_of_memory);       // objects see the reservation too
    CHECK_ERRC(st->reserve(~std::uint64_t{0}), errc::out_of_memory);  // no wrap-around
    CHECK(st->memory_used() == a.image_size);                   // images only
  }
  auto again = REQUIRE_OK(st->reserve(2 << 20));  // released with its handle
  st->set_memory_limit(0);
  REQUIRE_OK(st->reserve(std::uint64_t{1} << 40));  // no limit: nothing refused
}

TEST_CASE_FIXTURE(store_fixture, "store: pin_read_only shows the object's current bytes, and in a file store a write through them faults") {
  for (const bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    const object_id id = REQUIRE_OK(st->create(3 * 4096 + 8)).id;
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{id, 4096}, std::uint64_t{41}));
    const auto view = REQUIRE_OK(st->pin_read_only(id));
    const auto writable = REQUIRE_OK(st->pin(id));
    REQUIRE(view.bytes.size() == writable.bytes.size());
    std::uint64_t word = 0;
    std::memcpy(&word, view.bytes.data() + 4096, 8);
    CHECK(word == 41);
    // Writes made after the view was taken show through it: a put, and a
    // write through the writable bytes (what cx.local hands out).
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{id, 4096}, std::uint64_t{42}));
    std::memcpy(&word, view.bytes.data() + 4096, 8);
    CHECK(word == 42);
    const std::uint64_t seven = 7;
    std::memcpy(writable.bytes.data() + 8192, &seven, 8);
    std::memcpy(&word, view.bytes.data() + 8192, 8);
    CHECK(word == 7);
    CHECK_ERRC(st->pin_read_only(object_id::random()), errc::not_found);
    if (!persistent) {
      CHECK(static_cast<const void*>(view.bytes.data()) == writable.bytes.data());  // in place
      continue;
    }
    CHECK(static_cast<const void*>(view.bytes.data()) != writable.bytes.data());  // a mapping of its own
    // A child writes through the view: it must die of the fault (SIGSEGV; a
    // sanitizer's handler reports it and exits non-zero instead), and the
    // object keep its byte.
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::signal(SIGSEGV, SIG_DFL);
      const_cast<volatile std::byte*>(view.bytes.data())[4096] = std::byte{0x5a};
      _exit(0);
    }
    int wstatus = 0;
    REQUIRE(::waitpid(child, &wstatus, 0) == child);
    CHECK_FALSE((WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0));
    if (WIFSIGNALED(wstatus)) CHECK(WTERMSIG(wstatus) == SIGSEGV);
    CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 4096})) == 42);
  }
}

TEST_CASE_FIXTURE(store_fixture, "store: read_at_rest returns what read returns, at any offset and length") {
  for (const bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    // 3 MiB + a bit: several 1 MiB O_DIRECT pieces, none of them aligned to
    // the object's data (which starts after the header and FOT).
    const std::uint64_t size = (std::uint64_t{3} << 20) + 123;
    const object_id id = REQUIRE_OK(st->create(size)).id;
    std::vector<std::byte> data(size);
    for (std::uint64_t i = 0; i < size; ++i) data[i] = static_cast<std::byte>(i * 131 + (i >> 12));
    REQUIRE_OK(st->write(id, 0, data));
    for (const auto& [offset, length] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
             {0, size}, {1, 7}, {4095, 4098}, {4097, (std::uint64_t{2} << 20) + 13}, {size - 5, 5}, {size, 0}}) {
      CAPTURE(offset);
      CAPTURE(length);
      std::vector<std::byte> at_rest(length), read(length);
      REQUIRE_OK(st->read_at_rest(id, offset, at_rest));
      REQUIRE_OK(st->read(id, offset, read));
      CHECK(at_rest == read);
    }
    std::vector<std::byte> past(8);
    CHECK_ERRC(st->read_at_rest(id, size - 4, past), errc::out_of_bounds);
    CHECK_ERRC(st->read_at_rest(object_id::random(), 0, past), errc::not_found);
  }
}


TEST_CASE_FIXTURE(store_fixture, "store: read_at_rest reads from the file only the pages the range covers") {
  // The range is read in O_DIRECT pieces of up to 1 MiB; the last piece
  // reads the pages still needed, not a whole 1 MiB (a storage node's
  // pulls and cx.read go through here: device time, and a throttled
  // device's budget, would be spent on pages nobody asked for).
  auto st = open(true);
  const std::uint64_t size = std::uint64_t{4} << 20;
  const object_id id = REQUIRE_OK(st->create(size)).id;
  REQUIRE_OK(st->write(id, 0, std::vector<std::byte>(size, std::byte{7})));
  const auto before = test::storage_bytes_read();
  if (!before) {
    MESSAGE("skipped: /proc/self/io has no read_bytes here");
    return;
  }
  const std::uint64_t length = (std::uint64_t{1} << 20) + 100;  // a 1 MiB chunk, unaligned: two pieces
  std::vector<std::byte> out(length);
  REQUIRE_OK(st->read_at_rest(id, 4000, out));
  CHECK(out == std::vector<std::byte>(length, std::byte{7}));
  const std::uint64_t read = *test::storage_bytes_read() - *before;
  MESSAGE("read_at_rest of " << length << " bytes read " << read << " bytes from the file");
  if (read == 0) {
    MESSAGE("skipped: the store's file system does not do O_DIRECT here (read from the mapping)");
    return;
  }
  CHECK(read <= length + 3 * 4096);
}

namespace {

// Streams object `id` of `st` from `from` to its end, in order, `chunk`
// bytes per read_at_rest with read-ahead.
std::vector<std::byte> stream_at_rest(store& st, object_id id, std::uint64_t from, std::uint64_t size,
                                      std::uint64_t chunk) {
  std::vector<std::byte> out(size - from);
  for (std::uint64_t at = from; at < size; at += chunk) {
    const std::uint64_t n = std::min(chunk, size - at);
    REQUIRE_OK(st.read_at_rest(id, at, std::span(out).subspan(at - from, n), true));
  }
  return out;
}

std::vector<std::byte> pattern(std::uint64_t size, unsigned salt) {
  std::vector<std::byte> data(size);
  for (std::uint64_t i = 0; i < size; ++i) data[i] = static_cast<std::byte>(i * 131 + (i >> 12) + salt);
  return data;
}

}  // namespace

TEST_CASE_FIXTURE(store_fixture, "store: read_at_rest in order reads ahead, and gives what read gives") {
  // A thread reading an object in order has the next blocks read while it
  // works (runtime/object/direct_reader.hpp): the bytes are the same, and
  // the device is read ahead of the reader.
  auto st = open(true);
  const std::uint64_t size = (std::uint64_t{9} << 20) + 123;
  const object_id id = REQUIRE_OK(st->create(size)).id;
  const auto data = pattern(size, 0);
  REQUIRE_OK(st->write(id, 0, data));
  for (const std::uint64_t chunk : {std::uint64_t{4096}, std::uint64_t{256 << 10} + 24, std::uint64_t{3} << 20}) {
    CAPTURE(chunk);
    CHECK(stream_at_rest(*st, id, 0, size, chunk) == data);
    CHECK(stream_at_rest(*st, id, 777, size, chunk) == std::vector<std::byte>(data.begin() + 777, data.end()));
  }
  // Out of order, and without read-ahead, the same bytes.
  std::vector<std::byte> back(5000);
  REQUIRE_OK(st->read_at_rest(id, size - 5000, back, true));
  CHECK(std::equal(back.begin(), back.end(), data.end() - 5000));

  // Two reads in order start the blocks after the second: the device is
  // read beyond what was asked for, while the reader does nothing.
  const auto before = test::storage_bytes_read();
  if (!before) {
    MESSAGE("skipped: /proc/self/io has no read_bytes here");
    return;
  }
  std::vector<std::byte> first(256 << 10);
  REQUIRE_OK(st->read_at_rest(id, 0, first, true));
  REQUIRE_OK(st->read_at_rest(id, first.size(), first, true));
  std::uint64_t read = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((read = *test::storage_bytes_read() - *before) < (std::uint64_t{4} << 20) &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  MESSAGE("two in-order reads of 256 KiB had " << read << " bytes read from the file");
  if (read == 0) {
    MESSAGE("skipped: the store's file system does not do O_DIRECT here (read from the mapping)");
    return;
  }
  if (read <= 2 * first.size() + 2 * 4096) {
    MESSAGE("skipped: no read-ahead here (a build without liburing, or a kernel that refuses io_uring)");
    return;
  }
  CHECK(read >= (std::uint64_t{4} << 20));  // the block holding the next byte and the three after it
  CHECK(read <= (std::uint64_t{5} << 20) + 2 * first.size());
}

TEST_CASE_FIXTURE(store_fixture, "store: read_at_rest in order sees what changed the object since it read ahead") {
  // Blocks read ahead are dropped when the object changes through the store
  // (a write's commit, a flush after writes through local()), and when its
  // bytes are lent for writing.
  auto st = open(true);
  const std::uint64_t size = std::uint64_t{8} << 20, chunk = 128 << 10, at = std::uint64_t{3} << 20;
  const object_id id = REQUIRE_OK(st->create(size)).id;
  auto data = pattern(size, 0);
  REQUIRE_OK(st->write(id, 0, data));
  for (const int how : {0, 1, 2}) {
    CAPTURE(how);
    // In order up to 1 MiB: blocks up to 5 MiB are read ahead meanwhile.
    const auto head = stream_at_rest(*st, id, 0, std::uint64_t{1} << 20, chunk);
    CHECK(std::equal(head.begin(), head.end(), data.begin()));
    const auto fresh = pattern(4096, 7 + how);
    if (how == 0) {
      REQUIRE_OK(st->write(id, at, fresh));
    } else {
      auto bytes = REQUIRE_OK(st->local(id));
      std::memcpy(bytes.data() + at, fresh.data(), fresh.size());
      if (how == 1) REQUIRE_OK(st->flush(id));  // how == 2: lent, written, not yet flushed
    }
    std::copy(fresh.begin(), fresh.end(), data.begin() + at);
    const auto rest = stream_at_rest(*st, id, std::uint64_t{1} << 20, size, chunk);
    CHECK(std::equal(rest.begin(), rest.end(), data.begin() + (std::uint64_t{1} << 20)));
    if (how == 2) REQUIRE_OK(st->flush(id));
  }
}

namespace {

// A range of memory whose first read blocks the reading thread until
// release(): an anonymous mapping registered with userfaultfd, its page
// faults left unanswered. Lets a test hold a store write in the middle of
// copying its bytes. Closing the descriptor (release, or the destructor)
// lets every waiting read go on.
class stalled_bytes {
 public:
  explicit stalled_bytes(std::size_t size) : size_(size) {
    uffd_ = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (uffd_ < 0) return;
    void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) bytes_ = static_cast<std::byte*>(m);
    uffdio_api api{.api = UFFD_API, .features = 0, .ioctls = 0};
    uffdio_register reg{.range = {reinterpret_cast<std::uint64_t>(m), size}, .mode = UFFDIO_REGISTER_MODE_MISSING,
                        .ioctls = 0};
    if (!bytes_ || ::ioctl(uffd_, UFFDIO_API, &api) != 0 || ::ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0) close_uffd();
  }
  ~stalled_bytes() {
    close_uffd();
    if (bytes_) ::munmap(bytes_, size_);
  }
  [[nodiscard]] bool usable() const { return uffd_ >= 0; }
  std::span<const std::byte> span() const { return {bytes_, size_}; }
  /// Wait (bounded) until some thread is blocked reading the range.
  bool wait_for_reader(std::chrono::milliseconds limit) {
    pollfd p{uffd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return false;
    uffd_msg msg{};
    return ::read(uffd_, &msg, sizeof msg) == sizeof msg && msg.event == UFFD_EVENT_PAGEFAULT;
  }
  /// Let every blocked and later read through; the range reads as zeros.
  void release() { close_uffd(); }

 private:
  void close_uffd() {
    if (uffd_ >= 0) ::close(uffd_);
    uffd_ = -1;
  }
  std::size_t size_;
  std::byte* bytes_ = nullptr;
  int uffd_ = -1;
};

}  // namespace

TEST_CASE_FIXTURE(store_fixture, "store: a write in progress holds up its own object's readers, no other object's") {
  for (bool persistent : {false, true}) {
    CAPTURE(persistent);
    auto st = open(persistent);
    const object_id a = REQUIRE_OK(st->create(2 << 20)).id;
    const object_id b = REQUIRE_OK(st->create(64)).id;
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{a, 0}, 9));
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{b, 0}, 5));
    stalled_bytes source(1 << 20);
    if (!source.usable()) {
      MESSAGE("userfaultfd is not available here (needs root or vm.unprivileged_userfaultfd): not checked");
      return;
    }
    // The write to a stops at its first byte, inside the store.
    auto write_a = std::async(std::launch::async, [&] { return st->write(a, 0, source.span()); });
    REQUIRE(source.wait_for_reader(std::chrono::seconds(10)));

    // Other objects, and a's shape, are served meanwhile (bounded: before
    // objects had locks of their own, these waited for the write).
    auto others = std::async(std::launch::async, [&] {
      auto five = st->load(ref<std::uint64_t>{b, 0});
      auto stored = st->store_value(ref<std::uint64_t>{b, 8}, 6);
      auto shape = st->stat(a);
      auto pinned = st->pin(a);
      return five && *five == 5 && stored && shape && shape->data_size == (2u << 20) && pinned;
    });
    const bool served = others.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    CHECK(served);
    // A copy out of a waits for the write to end.
    auto read_a = std::async(std::launch::async, [&] { return st->load(ref<std::uint64_t>{a, 0}); });
    CHECK(read_a.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);

    source.release();
    REQUIRE(write_a.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    REQUIRE_OK(write_a.get());
    if (served) CHECK(others.get());
    REQUIRE(read_a.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(REQUIRE_OK(read_a.get()) == 0);  // what the write put there, not the 9 from before
    CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{b, 8})) == 6);
  }
}

namespace {

// The VmFlags line of /proc/self/smaps for the mapping holding `p`
// ("hg": advised for huge pages); empty if no mapping holds it.
std::string vm_flags_at(const void* p) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  REQUIRE(f != nullptr);
  char line[512];
  bool inside = false;
  std::string flags;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) inside = at >= lo && at < hi;
    else if (inside && std::strncmp(line, "VmFlags:", 8) == 0) {
      flags = line + 8;
      break;
    }
  }
  std::fclose(f);
  return flags;
}

bool advised_huge(const void* p) { return vm_flags_at(p).find(" hg") != std::string::npos; }

}  // namespace

TEST_CASE("anonymous_mapping: from 2 MiB up, aligned to a huge page and advised for huge pages") {
  constexpr std::size_t kHuge = anonymous_mapping::kHugePageBytes;
  auto large = REQUIRE_OK(anonymous_mapping::map(kHuge + 12345));
  REQUIRE(large.huge_pages_advised());  // this machine's kernels have transparent huge pages
  CHECK(large.size() == kHuge + 12345);
  CHECK(reinterpret_cast<std::uintptr_t>(large.data()) % kHuge == 0);
  CHECK(advised_huge(large.data()));
  CHECK(advised_huge(large.data() + large.size() - 1));
  CHECK(large.data()[0] == std::byte{0});
  CHECK(large.data()[large.size() - 1] == std::byte{0});
  large.data()[large.size() - 1] = std::byte{7};

  // Below one huge page: a plain mapping, not advised.
  auto small = REQUIRE_OK(anonymous_mapping::map(64 << 10));
  CHECK_FALSE(small.huge_pages_advised());
  CHECK_FALSE(advised_huge(small.data()));

  // Moved, the mapping changes hands; unmapped once, with its last owner.
  const std::byte* at = large.data();
  anonymous_mapping kept = std::move(large);
  CHECK(large.data() == nullptr);
  CHECK(kept.data() == at);
  CHECK(kept.data()[kept.size() - 1] == std::byte{7});
  kept = std::move(small);
  CHECK(vm_flags_at(at).empty());  // the large one is gone

  CHECK_ERRC(anonymous_mapping::map(0), errc::invalid_argument);
  CHECK_ERRC(anonymous_mapping::map(std::size_t{1} << 62), errc::out_of_memory);
}

TEST_CASE("large_bytes: a buffer of 2 MiB and up is a mapping of its own in huge pages, smaller ones are not") {
  large_bytes small(64 << 10);
  CHECK_FALSE(advised_huge(small.data()));
  large_bytes large(anonymous_mapping::kHugePageBytes + 100);
  CHECK(reinterpret_cast<std::uintptr_t>(large.data()) % anonymous_mapping::kHugePageBytes == 0);
  CHECK(advised_huge(large.data()));
  for (std::size_t i = 0; i < large.size(); i += 4096) large[i] = static_cast<std::uint8_t>(i >> 12);
  // Grown from small to large, moved, copied: the bytes follow.
  for (std::size_t i = 0; i < small.size(); ++i) small[i] = static_cast<std::uint8_t>(i * 7);
  small.resize(3 << 20);
  CHECK(advised_huge(small.data()));
  CHECK(small[(64 << 10) - 1] == static_cast<std::uint8_t>(((64 << 10) - 1) * 7));
  const std::uint8_t* at = large.data();
  large_bytes moved = std::move(large);
  CHECK(moved.data() == at);
  const large_bytes copy = moved;
  CHECK(copy.data() != at);
  CHECK(std::equal(copy.begin(), copy.end(), moved.begin()));
  moved.clear();
  moved.shrink_to_fit();
  CHECK(vm_flags_at(at).empty());  // unmapped once, with its last owner
}

TEST_CASE("store: a memory store keeps an image of 2 MiB and up in huge pages") {
  auto mem = store::open_memory();
  const auto big = REQUIRE_OK(mem->create(3 << 20)).id;
  const auto small = REQUIRE_OK(mem->create(4096)).id;
  CHECK(advised_huge(REQUIRE_OK(mem->local_ptr(ref<std::uint64_t>{big, 0}))));
  CHECK(advised_huge(REQUIRE_OK(mem->local_ptr(ref<std::uint64_t>{big, (3 << 20) - 8}))));
  CHECK_FALSE(advised_huge(REQUIRE_OK(mem->local_ptr(ref<std::uint64_t>{small, 0}))));
  // Imported and written images too (a put, a move's pending image).
  const auto image = REQUIRE_OK(mem->export_image(big));
  auto other = store::open_memory();
  REQUIRE_OK(other->import_image(image));
  CHECK(advised_huge(REQUIRE_OK(other->local_ptr(ref<std::uint64_t>{big, 8}))));
}
