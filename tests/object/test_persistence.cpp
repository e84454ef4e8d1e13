// The directory store against real crashes and real disk damage.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include <sodium.h>

#include <ferry/store.hpp>

#include "object_layout.hpp"
#include "test_util.hpp"

using namespace ferry;

namespace {

constexpr int kObjects = 8;
constexpr std::uint64_t kSlots = 512;  // u64 slots per object

object_id fixed_id(int k) { return object_id{0xf0f0, static_cast<std::uint64_t>(k + 1)}; }

// Child: create kObjects, then write (object, slot) = sequence number forever,
// reporting each acknowledged write on `ack_fd`.
[[noreturn]] void writer_child(const std::filesystem::path& dir, int ack_fd) {
  auto st = store::open_directory(dir);
  if (!st) _exit(10);
  for (int k = 0; k < kObjects; ++k)
    if (!(*st)->create(fixed_id(k), kSlots * 8)) _exit(11);
  for (std::uint64_t seq = 1;; ++seq) {
    const int k = static_cast<int>(seq % kObjects);
    const std::uint64_t slot = (seq / kObjects) % kSlots;
    if (!(*st)->store_value(ref<std::uint64_t>{fixed_id(k), slot * 8}, seq)) _exit(12);
    if (seq % 97 == 0) {  // also exercise re-layouts (journal-free path)
      if (!(*st)->fot_add(fixed_id(k), object_id::random())) _exit(13);
    }
    if (::write(ack_fd, &seq, sizeof seq) != sizeof seq) _exit(14);
  }
}

}  // namespace

TEST_CASE("directory store: every acknowledged write survives SIGKILL") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    std::filesystem::remove_all(dir);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(fds[0]);
      writer_child(dir, fds[1]);
    }
    ::close(fds[1]);
    // Kill after a varying number of acknowledgements, while it keeps writing.
    const std::uint64_t kill_after = 150 + 120 * round;
    std::uint64_t last_acked = 0, seq = 0;
    while (last_acked < kill_after && ::read(fds[0], &seq, sizeof seq) == sizeof seq) last_acked = seq;
    ::kill(child, SIGKILL);
    int wstatus = 0;
    ::waitpid(child, &wstatus, 0);
    // Drain acks that were sent before death.
    while (::read(fds[0], &seq, sizeof seq) == sizeof seq) last_acked = seq;
    ::close(fds[0]);
    REQUIRE(WIFSIGNALED(wstatus));
    REQUIRE(last_acked >= kill_after);

    auto st = REQUIRE_OK(store::open_directory(dir));
    CHECK(st->damaged().empty());
    // Each slot holds the latest acknowledged sequence number written to it,
    // or a later one that completed but whose ack was cut off.
    for (std::uint64_t s = 1; s <= last_acked; ++s) {
      const int k = static_cast<int>(s % kObjects);
      const std::uint64_t slot = (s / kObjects) % kSlots;
      const auto v = REQUIRE_OK(st->load(ref<std::uint64_t>{fixed_id(k), slot * 8}));
      if (s + kObjects * kSlots > last_acked) CHECK(v >= s);  // not overwritten later
    }
  }
}

namespace {

std::filesystem::path object_path(const std::filesystem::path& dir, object_id id) {
  return dir / (id.to_string() + ".fobj");
}

void patch_file(const std::filesystem::path& file, std::uint64_t offset, auto mutate) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  mutate(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("directory store: damaged files are reported, the others stay readable") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  std::vector<object_id> ids;
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    for (std::uint64_t k = 0; k < 5; ++k) {
      ids.push_back(REQUIRE_OK(st->create(256)).id);
      REQUIRE_OK(st->store_value(ref<std::uint64_t>{ids.back(), 128}, 1000 + k));
    }
  }
  // ids[1]: one flipped data byte. ids[2]: truncated. ids[3]: future version.
  patch_file(object_path(dir, ids[1]), 64 + 130, [](char& c) { c ^= 0x01; });
  std::filesystem::resize_file(object_path(dir, ids[2]), 100);
  patch_file(object_path(dir, ids[3]), 4, [](char& c) { c = 9; });
  // A torn journal next to a healthy object must be dropped, not replayed.
  { std::ofstream(dir / (ids[4].to_string() + ".fjournal")) << "torn garbage"; }

  auto st = REQUIRE_OK(store::open_directory(dir));
  const auto damaged = st->damaged();
  REQUIRE(damaged.size() == 3);
  std::map<object_id, errc> kinds;
  for (const auto& [id, why] : damaged) kinds[id] = why.code();
  CHECK(kinds[ids[1]] == errc::corrupt);
  CHECK(kinds[ids[2]] == errc::bad_format);
  CHECK(kinds[ids[3]] == errc::bad_version);
  CHECK_ERRC(st->stat(ids[1]), errc::corrupt);
  CHECK_ERRC(st->read(ids[1], 0, 8), errc::corrupt);
  CHECK(st->list() == std::vector<object_id>{std::min(ids[0], ids[4]), std::max(ids[0], ids[4])});
  CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{ids[0], 128})) == 1000);
  CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{ids[4], 128})) == 1004);
  // A damaged object can be removed, and its id reused.
  REQUIRE_OK(st->remove(ids[1]));
  REQUIRE_OK(st->create(ids[1], 8));
}

TEST_CASE("directory store: data, FOT and sizes survive a clean reopen") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  object_id a, b;
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    a = REQUIRE_OK(st->create(64)).id;
    b = REQUIRE_OK(st->create(64)).id;
    auto p = REQUIRE_OK(st->make_ptr(a, ref<std::uint64_t>{b, 16}));
    REQUIRE_OK(st->store_value(ref<ptr<std::uint64_t>>{a, 0}, p));
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{b, 16}, 77));
    REQUIRE_OK(st->resize(b, 1 << 20));
  }
  auto st = REQUIRE_OK(store::open_directory(dir));
  CHECK(st->damaged().empty());
  CHECK(REQUIRE_OK(st->stat(b)).data_size == (1u << 20));
  auto p = REQUIRE_OK(st->load(ref<ptr<std::uint64_t>>{a, 0}));
  auto target = REQUIRE_OK(st->resolve(a, p));
  CHECK(target == ref<std::uint64_t>{b, 16});
  CHECK(REQUIRE_OK(st->load(target)) == 77);
}

namespace {
// `sessions` openings of the directory store at `dir`: each finds no damage
// and the object (made in the first, of expected.size() bytes) holding
// `expected`, then lets `work` change both through the object's bytes.
object_id in_sessions(const std::filesystem::path& dir, std::vector<std::byte>& expected, int sessions,
                      const std::function<void(store&, object_id, std::span<std::byte>)>& work) {
  object_id id;
  for (int session = 0; session < sessions; ++session) {
    auto st = REQUIRE_OK(store::open_directory(dir));
    REQUIRE(st->damaged().empty());
    if (session == 0) id = REQUIRE_OK(st->create(expected.size())).id;
    CHECK(REQUIRE_OK(st->read(id, 0, expected.size())) == expected);
    work(*st, id, REQUIRE_OK(st->local(id)));
  }
  return id;
}
}  // namespace

TEST_CASE("directory store: writes sealed block by block leave every image valid across reopens") {
  // Each write re-hashes the blocks it touched (docs/object-format.md,
  // "Checksum"): writes at random places, across block boundaries, FOT
  // appends and writes through local() made durable by flush(), checked
  // against a copy kept here after every reopen.
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  constexpr std::uint64_t kBytes = (3 << 20) + 12345;
  std::vector<std::byte> expected(kBytes);
  std::mt19937_64 rng(11);
  const object_id id = in_sessions(dir, expected, 3, [&](store& st, object_id id, std::span<std::byte> local) {
    for (int k = 0; k < 5; ++k) {
      const std::uint64_t at = rng() % kBytes;
      local[at] = expected[at] = static_cast<std::byte>(rng());
    }
    REQUIRE_OK(st.flush(id));
    // The writes last: the file is left as their seals made it.
    for (int w = 0; w < 30; ++w) {
      const std::uint64_t len = 1 + rng() % (200 * 1024);
      const std::uint64_t at = rng() % (kBytes - len + 1);
      std::vector<std::byte> bytes(len);
      for (auto& b : bytes) b = static_cast<std::byte>(rng());
      std::copy(bytes.begin(), bytes.end(), expected.begin() + static_cast<std::ptrdiff_t>(at));
      REQUIRE_OK(st.write(id, at, bytes));
      if (w % 10 == 9) REQUIRE_OK(st.fot_add(id, object_id::random()));
    }
  });
  auto st = REQUIRE_OK(store::open_directory(dir));
  CHECK(st->damaged().empty());
  CHECK(REQUIRE_OK(st->read(id, 0, kBytes)) == expected);
  CHECK(REQUIRE_OK(st->stat(id)).fot_count == 9);
}

TEST_CASE("directory store: flush(id, written) seals the ranges written through local(), and only those") {
  // What a node does after a call: the ranges cx.local handed out are
  // sealed, the other blocks' digests kept (docs/object-format.md).
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  constexpr std::uint64_t kBytes = (1 << 20) + 777;  // 17 checksum blocks
  std::vector<std::byte> expected(kBytes);
  std::mt19937_64 rng(5);
  const object_id id = in_sessions(dir, expected, 3, [&](store& st, object_id id, std::span<std::byte> local) {
    // Twice: a reopened store's first seal hashes the whole image, the
    // second only the ranges.
    for (int round = 0; round < 2; ++round) {
      std::vector<store::data_range> written;
      for (int k = 0; k < 4; ++k) {
        const std::uint64_t len = 1 + rng() % (100 * 1024);  // some across a block's end
        const std::uint64_t at = rng() % (kBytes - len + 1);
        for (std::uint64_t i = at; i < at + len; ++i) local[i] = expected[i] = static_cast<std::byte>(rng());
        written.push_back({at, len});
      }
      REQUIRE_OK(st.flush(id, written));
    }
  });
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    REQUIRE(st->damaged().empty());
    CHECK(REQUIRE_OK(st->read(id, 0, kBytes)) == expected);
    CHECK_ERRC(st->flush(id, std::vector<store::data_range>{{kBytes - 8, 9}}), errc::out_of_bounds);
    // A write outside what the flush names is not sealed: found on reopen.
    auto local = REQUIRE_OK(st->local(id));
    REQUIRE_OK(st->flush(id));  // the digests at hand, so the next flush hashes its range only
    local[0] ^= std::byte{1};
    local[kBytes - 1] ^= std::byte{1};
    REQUIRE_OK(st->flush(id, std::vector<store::data_range>{{kBytes - 1, 1}}));
  }
  auto st = REQUIRE_OK(store::open_directory(dir));
  CHECK_ERRC(st->stat(id), errc::corrupt);
  // A memory store keeps no checksum: its flush checks the range and does nothing else.
  auto mem = store::open_memory();
  const auto m = REQUIRE_OK(mem->create(100)).id;
  REQUIRE_OK(mem->flush(m, std::vector<store::data_range>{{0, 100}}));
  CHECK_ERRC(mem->flush(m, std::vector<store::data_range>{{1, 100}}), errc::out_of_bounds);
}

TEST_CASE("directory store: an object written in format version 1 is read, and its next write makes it version 2") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  object_id id;
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    id = REQUIRE_OK(st->create(100000)).id;
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{id, 80000}, 4242));
  }
  // Rewrite the file as a version 1 store wrote it: one checksum over the whole image.
  const auto file = object_path(dir, id);
  auto version_of = [&] {
    std::ifstream f(file, std::ios::binary);
    std::vector<std::byte> img(std::filesystem::file_size(file));
    f.read(reinterpret_cast<char*>(img.data()), static_cast<std::streamsize>(img.size()));
    return std::pair{img, REQUIRE_OK(layout::read_header(img)).version};
  };
  {
    auto [img, version] = version_of();
    CHECK(version == layout::kFormatVersion);
    img[layout::kOffVersion] = std::byte{1};
    layout::store_u64(img.data() + layout::kOffChecksum, layout::compute_checksum(img));
    std::ofstream(file, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(img.data()),
                                                                  static_cast<std::streamsize>(img.size()));
    CHECK(version_of().second == 1);
  }
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    CHECK(st->damaged().empty());
    CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 80000})) == 4242);
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{id, 8}, 7));
  }
  CHECK(version_of().second == layout::kFormatVersion);
  auto st = REQUIRE_OK(store::open_directory(dir));
  CHECK(st->damaged().empty());
  CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 80000})) == 4242);
  CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 8})) == 7);
}

namespace {

// A journal record as the directory store writes one (docs/object-format.md,
// "The directory store on disk"): one patch of `bytes` at image `offset`.
std::vector<std::byte> journal_record(std::uint64_t offset, std::span<const std::byte> bytes) {
  std::vector<std::byte> rec(8 + 16 + bytes.size());
  const std::uint32_t magic = 0x4a595246, count = 1;  // "FRYJ"
  const std::uint64_t length = bytes.size();
  std::memcpy(rec.data(), &magic, 4);
  std::memcpy(rec.data() + 4, &count, 4);
  std::memcpy(rec.data() + 8, &offset, 8);
  std::memcpy(rec.data() + 16, &length, 8);
  std::memcpy(rec.data() + 24, bytes.data(), bytes.size());
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(rec.data()), rec.size(), nullptr, 0);
  const auto* h = reinterpret_cast<const std::byte*>(hash);
  rec.insert(rec.end(), h, h + sizeof hash);
  return rec;
}

}  // namespace

TEST_CASE("directory store: the journal keeps its last record cancelled, and a record is replayed whatever follows it") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "objects";
  object_id id;
  std::uint64_t data_at = 0;  // the data's offset in the image
  const auto journal = [&] { return dir / (id.to_string() + ".fjournal"); };
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    const auto made = REQUIRE_OK(st->create(4096));
    id = made.id;
    data_at = layout::data_offset_for(made.fot_capacity);
    // A put of 2 KiB, then of 8 bytes (a shorter record over the longer one),
    // then a write through the mapping made durable by flush(): the last
    // record must not come back over it when the store is opened again.
    const std::vector<std::byte> big(2048, std::byte{0x11});
    REQUIRE_OK(st->write(id, 0, big));
    REQUIRE_OK(st->store_value(ref<std::uint64_t>{id, 16}, 5));
    REQUIRE_OK(st->local(id))[16] = std::byte{9};
    REQUIRE_OK(st->flush(id));
    CHECK(std::filesystem::file_size(journal()) >= 2048);  // kept at its size, not truncated
  }
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    CHECK(st->damaged().empty());
    CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 16})) == 9);
  }
  // A record left in the journal (as a crash after its fdatasync leaves it),
  // followed by what a longer record before it left there: replayed.
  std::uint64_t value = 0x7777;
  auto rec = journal_record(data_at + 24, std::as_bytes(std::span(&value, 1)));
  rec.resize(rec.size() + 100, std::byte{0xee});
  {
    std::ofstream(journal(), std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(rec.data()), static_cast<std::streamsize>(rec.size()));
  }
  {
    auto st = REQUIRE_OK(store::open_directory(dir));
    CHECK(st->damaged().empty());
    CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 24})) == 0x7777);
    CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 16})) == 9);
  }
  CHECK(std::filesystem::file_size(journal()) == 0);  // emptied once replayed
  // The same record cancelled (its magic zeroed): not replayed.
  value = 0x8888;
  rec = journal_record(data_at + 24, std::as_bytes(std::span(&value, 1)));
  std::memset(rec.data(), 0, 4);
  {
    std::ofstream(journal(), std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(rec.data()), static_cast<std::streamsize>(rec.size()));
  }
  auto st = REQUIRE_OK(store::open_directory(dir));
  CHECK(st->damaged().empty());
  CHECK(REQUIRE_OK(st->load(ref<std::uint64_t>{id, 24})) == 0x7777);
}
