// `ferry objects`: inspect and edit a persistent object store directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <ferry/store.hpp>

#include "commands.hpp"

namespace ferry::cli {
namespace {

int g_exit = 0;

// Report an error the way every subcommand does, and fail the command.
void fail(const status& s) {
  fmt::print(stderr, "ferry: {}\n", s.describe());
  set_exit_code(s.code() == errc::not_found ? 2 : 1);
}

std::unique_ptr<store> open_or_fail(const std::string& dir) {
  auto st = store::open_directory(dir);
  if (!st) {
    fail(st.error());
    return nullptr;
  }
  return std::move(*st);
}

// Input that is not a regular file (stdin, a pipe, a device) has no size to
// check in advance and may never end (/dev/zero): without --max-size it may
// bring at most this many bytes.
constexpr std::uint64_t kDefaultStreamMax = std::uint64_t{256} << 20;

// The bytes of `path` ("-": stdin), at most `max` of them (none: a regular
// file any size, other input kDefaultStreamMax). Never throws: a directory,
// an unreadable file and input larger than the limit are errors saying so.
result<std::vector<std::byte>> read_input(const std::string& path, std::optional<std::uint64_t> max_size) {
  const bool stdin_input = path == "-";
  const std::string what = stdin_input ? "stdin" : path;
  int fd = STDIN_FILENO;
  if (!stdin_input) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(errc::io_error, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  struct closer {
    int fd;
    bool owned;
    ~closer() {
      if (owned) ::close(fd);
    }
  } close_fd{fd, !stdin_input};
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) return make_error(errc::io_error, fmt::format("cannot stat {}: {}", what, std::strerror(errno)));
  if (S_ISDIR(sb.st_mode))
    return make_error(errc::invalid_argument, fmt::format("{} is a directory: put takes a file", what));
  const bool regular = S_ISREG(sb.st_mode);
  const std::uint64_t max = max_size ? *max_size : regular ? UINT64_MAX - 1 : kDefaultStreamMax;
  if (regular && static_cast<std::uint64_t>(sb.st_size) > max)
    return make_error(errc::invalid_argument, fmt::format("{} has {} bytes, more than --max-size {}", what,
                                                          static_cast<std::uint64_t>(sb.st_size), max));
  std::vector<std::byte> data;
  std::size_t chunk = 64 * 1024;
  if (regular) {  // the size is known: one buffer of that size (+1 to see the end)
    chunk = static_cast<std::size_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(sb.st_size) + 1, max + 1));
    try {
      data.reserve(chunk);
    } catch (const std::exception&) {
      return make_error(errc::io_error, fmt::format("out of memory reading {} ({} bytes)", what, sb.st_size));
    }
  }
  for (;;) {
    if (data.size() > max)
      return make_error(errc::invalid_argument,
                        fmt::format("{} has more than --max-size {} bytes{}", what, max,
                                    regular ? "" : " (it is not a regular file: does it ever end?)"));
    // Read at most one byte past the limit: enough to tell "too large".
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, max + 1 - data.size()));
    const std::size_t have = data.size();
    try {
      data.resize(have + want);
    } catch (const std::exception&) {  // bad_alloc, length_error
      return make_error(errc::io_error, fmt::format("out of memory reading {} ({} bytes so far)", what, have));
    }
    const ssize_t n = ::read(fd, data.data() + have, want);
    if (n < 0) {
      data.resize(have);
      if (errno == EINTR) continue;
      return make_error(errc::io_error, fmt::format("cannot read {}: {}", what, std::strerror(errno)));
    }
    data.resize(have + static_cast<std::size_t>(n));
    if (n == 0) return data;
    chunk = std::min<std::size_t>(chunk * 2, std::size_t{64} << 20);
  }
}

}  // namespace

int exit_code() { return g_exit; }
void set_exit_code(int code) { g_exit = code; }

void add_objects_command(CLI::App& app) {
  auto* objects = app.add_subcommand("objects", "List, read, write and remove objects in a store directory");
  objects->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  objects->add_option("-s,--store", *dir, "Store directory (as used by `ferry node --store`)")
      ->required()
      ->envname("FERRY_STORE");

  auto* ls = objects->add_subcommand("ls", "List objects: id, data bytes, FOT entries; damaged ones last");
  ls->callback([dir] {
    auto st = open_or_fail(*dir);
    if (!st) return;
    for (const auto& id : st->list()) {
      auto info = st->stat(id);
      if (info) fmt::print("{}  {:>12}  fot {}\n", id.to_string(), info->data_size, info->fot_count);
    }
    for (const auto& [id, why] : st->damaged()) fmt::print("{}  DAMAGED: {}\n", id.to_string(), why.describe());
    if (!st->damaged().empty()) set_exit_code(3);
  });

  auto* get = objects->add_subcommand("get", "Write an object's data (or a range of it) to stdout or a file");
  auto gid = std::make_shared<std::string>();
  auto goff = std::make_shared<std::uint64_t>(0);
  auto glen = std::make_shared<std::int64_t>(-1);
  auto gout = std::make_shared<std::string>();
  get->add_option("ID", *gid, "Object id (32 hex digits)")->required();
  get->add_option("--offset", *goff, "First byte to read");
  get->add_option("--length", *glen, "Bytes to read (default: to the end)");
  get->add_option("-o,--output", *gout, "Write to this file instead of stdout");
  get->callback([=] {
    auto id = object_id::parse(*gid);
    if (!id) return fail(id.error());
    auto st = open_or_fail(*dir);
    if (!st) return;
    auto info = st->stat(*id);
    if (!info) return fail(info.error());
    const std::uint64_t len = *glen >= 0 ? static_cast<std::uint64_t>(*glen)
                              : info->data_size >= *goff ? info->data_size - *goff
                                                         : 0;
    auto bytes = st->read(*id, *goff, len);
    if (!bytes) return fail(bytes.error());
    std::FILE* out = gout->empty() ? stdout : std::fopen(gout->c_str(), "wb");
    if (!out) return fail(make_error(errc::io_error, "cannot open " + *gout));
    std::fwrite(bytes->data(), 1, bytes->size(), out);
    if (out != stdout) std::fclose(out);
  });

  auto* put = objects->add_subcommand("put", "Create an object holding a file's bytes; prints its id");
  auto pfile = std::make_shared<std::string>();
  auto pid = std::make_shared<std::string>();
  auto pmax = std::make_shared<std::optional<std::uint64_t>>();
  put->add_option("FILE", *pfile, "File whose bytes become the object's data ('-' for stdin)")->required();
  put->add_option("--id", *pid, "Use this id instead of a random one");
  put->add_option("--max-size", *pmax,
                  fmt::format("Refuse input larger than this many bytes (default: a regular file any size; "
                              "stdin, a pipe or a device {} = 256 MiB)",
                              kDefaultStreamMax));
  put->footer(
      "FILE may be a regular file, '-' (stdin), a pipe or a device; a directory is refused. Input that is\n"
      "not a regular file has no size to check in advance: reading stops at --max-size (so /dev/zero is\n"
      "refused after 256 MiB instead of filling memory).");
  put->callback([=] {
    auto data = read_input(*pfile, *pmax);
    if (!data) return fail(data.error());
    object_id id = object_id::random();
    if (!pid->empty()) {
      auto parsed = object_id::parse(*pid);
      if (!parsed) return fail(parsed.error());
      id = *parsed;
    }
    auto st = open_or_fail(*dir);
    if (!st) return;
    auto info = st->create(id, data->size());
    if (!info) return fail(info.error());
    if (auto w = st->write(id, 0, std::as_bytes(std::span(*data))); !w) return fail(w.error());
    fmt::print("{}\n", id.to_string());
  });

  auto* rm = objects->add_subcommand("rm", "Remove an object (durable when the command returns)");
  auto rid = std::make_shared<std::string>();
  rm->add_option("ID", *rid, "Object id")->required();
  rm->callback([=] {
    auto id = object_id::parse(*rid);
    if (!id) return fail(id.error());
    auto st = open_or_fail(*dir);
    if (!st) return;
    if (auto r = st->remove(*id); !r) fail(r.error());
  });
}

}  // namespace ferry::cli
