// `ferry bench store [--json]`: what a persistent object store (the
// directory store a storage node keeps) costs over the bare durable file
// operations underneath it, on the file system of --dir. Every case runs in
// rounds, each timing the baseline and ferry back to back (in alternating
// order), on the same file system:
//   fill              baseline: pwrite + fdatasync of each chunk into a
//                     preallocated file of the object's size
//                     ferry: store::write of each chunk into an object
//                     (journal record + fdatasync, the chunk, its checksum
//                     blocks, msync: docs/object-format.md)
//   small write       the same for 8 bytes in the middle of the object
//   seal after a call baseline: msync of a shared mapping of the file after
//                     one byte was written through it
//                     ferry: one byte written through store::local(), then
//                     store::flush() of the range written (what a node does
//                     when a call that took a local pointer ends: it seals
//                     what cx.local handed out, docs/reliability.md); and
//                     the same with the whole image sealed (flush() with no
//                     ranges, what a node did before 2026-12-07)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include <ferry/store.hpp>

#include "commands.hpp"
#include "common/bench_report.hpp"

namespace ferry::cli {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using bench::row;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

[[noreturn]] void os_failure(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

template <class T>
T ok(result<T> r, const char* what) {
  if (!r) throw ferry::error(make_error(r.error().code(), fmt::format("{}: {}", what, r.error().message())));
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

// The bare file the baselines write: preallocated, mapped for the seal case.
class bare_file {
 public:
  bare_file(const fs::path& path, std::uint64_t size) : size_(size) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) os_failure("open " + path.string());
    if (::posix_fallocate(fd_, 0, static_cast<off_t>(size)) != 0 && ::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      os_failure("allocate " + path.string());
    void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) os_failure("mmap " + path.string());
    map_ = static_cast<std::byte*>(m);
    if (::fsync(fd_) != 0) os_failure("fsync " + path.string());
  }
  ~bare_file() {
    ::munmap(map_, size_);
    ::close(fd_);
  }
  bare_file(const bare_file&) = delete;
  bare_file& operator=(const bare_file&) = delete;

  void durable_write(std::uint64_t at, std::span<const std::byte> bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(at + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) os_failure("pwrite");
      done += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd_) != 0) os_failure("fdatasync");
  }
  void write_through_mapping_and_sync(std::uint64_t at) {
    map_[at] = std::byte{0x5a};
    if (::msync(map_, size_, MS_SYNC) != 0) os_failure("msync");
  }

 private:
  std::uint64_t size_;
  int fd_ = -1;
  std::byte* map_ = nullptr;
};

struct settings {
  fs::path dir;
  std::uint64_t object_mib = 64;
  std::uint64_t chunk_kib = 1024;
  int rounds = 3;
  int small_writes = 21;
};

std::vector<row> run(const settings& s) {
  const std::uint64_t size = s.object_mib << 20, chunk = s.chunk_kib << 10;
  fs::create_directories(s.dir);
  auto st = ok(store::open_directory(s.dir / "store"), "opening the store");
  const object_id id = ok(st->create(size), "creating the object").id;
  bare_file bare(s.dir / "bare", size);
  const std::vector<std::byte> chunk_bytes(chunk, std::byte{0x11});
  const std::vector<std::byte> small(8, std::byte{0x22});

  std::vector<double> fill_bare, fill_ferry, small_bare, small_ferry, seal_bare, seal_ferry, seal_whole_ferry;
  for (int round = 0; round < s.rounds; ++round) {
    fmt::print(stderr, "ferry: bench store: round {} of {}\n", round + 1, s.rounds);
    bench::in_rotating_order(static_cast<std::size_t>(round), 2, [&](std::size_t which) {
      const bool ferry_turn = which == 1;
      // Fill the whole object chunk by chunk.
      auto t0 = clock_type::now();
      for (std::uint64_t at = 0; at < size; at += chunk) {
        const auto piece = std::span(chunk_bytes).first(std::min(chunk, size - at));
        if (ferry_turn) ok(st->write(id, at, piece), "store::write");
        else bare.durable_write(at, piece);
      }
      (ferry_turn ? fill_ferry : fill_bare).push_back(ms_since(t0));
      // Small writes in the middle: the median of the round's.
      std::vector<double> smalls;
      for (int k = 0; k < s.small_writes; ++k) {
        const std::uint64_t at = size / 2 + 64 * static_cast<std::uint64_t>(k);
        t0 = clock_type::now();
        if (ferry_turn) ok(st->write(id, at, small), "store::write");
        else bare.durable_write(at, small);
        smalls.push_back(ms_since(t0));
      }
      (ferry_turn ? small_ferry : small_bare).push_back(bench::median(smalls));
      // One byte through the mapping, then what makes it durable.
      t0 = clock_type::now();
      if (ferry_turn) {
        auto local = ok(st->local(id), "store::local");
        local[size / 3] = std::byte{0x5a};
        ok(st->flush(id, std::vector<store::data_range>{{size / 3, 1}}), "store::flush");
        seal_ferry.push_back(ms_since(t0));
        t0 = clock_type::now();
        local[size / 3] = std::byte{0xa5};
        ok(st->flush(id), "store::flush");
        seal_whole_ferry.push_back(ms_since(t0));
      } else {
        bare.write_through_mapping_and_sync(size / 3);
        seal_bare.push_back(ms_since(t0));
      }
    });
  }
  const auto mib = s.object_mib;
  const auto with_range = [](std::string name, const std::vector<double>& b, const std::vector<double>& f,
                             std::string unit) {
    return row{std::move(name), bench::median(b), bench::median(f), std::move(unit),
               bench::paired_ratio_range(b, f)};
  };
  return {
      with_range(fmt::format("fill {} MiB in {} KiB durable writes", mib, s.chunk_kib), fill_bare, fill_ferry, "ms"),
      with_range(fmt::format("8-byte durable write into {} MiB", mib), small_bare, small_ferry, "ms"),
      with_range(fmt::format("seal after a call's write, {} MiB", mib), seal_bare, seal_ferry, "ms"),
      with_range(fmt::format("seal of the whole image after a write, {} MiB", mib), seal_bare, seal_whole_ferry, "ms"),
  };
}

}  // namespace

void add_bench_store_command(CLI::App& app) {
  auto* cmd = bench_group(app).add_subcommand(
      "store",
      "Persistent object store: durable writes and the seal after a call, vs the bare file operations (pwrite + "
      "fdatasync, msync) on the same file system, in rounds of both back to back");
  auto s = std::make_shared<settings>();
  auto json = std::make_shared<bool>(false);
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--dir", *dir,
                  "Directory on the file system to measure (made if missing; its store/ and bare file are removed "
                  "at the end). Default: a new directory under TMPDIR, or /tmp");
  cmd->add_option("--object-mib", s->object_mib, "Object size in MiB")->check(CLI::Range(1, 65536))->capture_default_str();
  cmd->add_option("--chunk-kib", s->chunk_kib, "Bytes per write of the fill, in KiB (a put's chunk is 1024)")
      ->check(CLI::Range(4, 65536))
      ->capture_default_str();
  cmd->add_option("--rounds", s->rounds, "Rounds, each timing the baseline and ferry back to back")
      ->check(CLI::Range(1, 101))
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  cmd->callback([s, json, dir] {
    bool made = false;
    try {
      if (dir->empty()) {
        std::string tmpl = (fs::temp_directory_path() / "ferry-bench-store-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) os_failure("mkdtemp " + tmpl);
        s->dir = tmpl;
        made = true;
      } else {
        s->dir = *dir;
      }
      auto rows = run(*s);
      bench::print_rows(rows, *json, "bare file",
                        bench::parameters()
                            .add("dir", s->dir.string())
                            .add("object_mib", s->object_mib)
                            .add("chunk_kib", s->chunk_kib)
                            .add("rounds", s->rounds));
    } catch (const std::exception& e) {
      fmt::print(stderr, "ferry: bench store: {}\n", e.what());
      set_exit_code(1);
    }
    std::error_code ec;
    if (made) {
      fs::remove_all(s->dir, ec);
    } else if (!s->dir.empty()) {
      fs::remove_all(s->dir / "store", ec);
      fs::remove(s->dir / "bare", ec);
    }
  });
}

}  // namespace ferry::cli
