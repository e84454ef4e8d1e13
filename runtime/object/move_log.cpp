#include "object/move_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/posix_io.hpp"
#include "wire/object_layout.hpp"

namespace ferry::object {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kRecordSize = 12;

const char* extension(move_log::side s) { return s == move_log::side::out ? ".out" : ".in"; }

status os_error(std::string_view what, const fs::path& p, int err = errno) {
  return make_error(errc::io_error, fmt::format("move log: {} {}: {}", what, p.string(), std::strerror(err)));
}

result<void> fsync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return os_error("open", p);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_error("fsync", p, err);
  return {};
}

}  // namespace

result<std::unique_ptr<move_log>> move_log::open(const fs::path& store_dir) {
  if (store_dir.empty()) return std::unique_ptr<move_log>(new move_log({}, store::open_memory()));
  const auto dir = store_dir / "moves";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(errc::io_error, fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  FERRY_TRY(auto incoming, store::open_directory(store_dir / "incoming"));
  std::unique_ptr<move_log> log(new move_log(dir, std::move(incoming)));
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    const auto& p = de.path();
    const auto ext = p.extension();
    const auto id = object_id::parse(p.stem().string());
    if (!id || (ext != ".out" && ext != ".in")) {
      if (ext == ".tmp") fs::remove(p, ec);  // a put that crashed before its rename: never acted on
      continue;
    }
    std::array<std::byte, kRecordSize> bytes{};
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    const bool whole = core::read_exact(fd, bytes).ok();
    ::close(fd);
    if (!whole) continue;  // cannot be: records are renamed into place whole
    record r;
    std::memcpy(&r.peer, bytes.data(), 4);
    r.version = layout::load_u64(bytes.data() + 4);
    log->records_[{ext == ".out" ? side::out : side::in, *id}] = r;
  }
  return log;
}

fs::path move_log::file_of(side s, const object_id& id) const { return dir_ / (id.to_string() + extension(s)); }

result<void> move_log::put(side s, const object_id& id, record r) {
  if (!dir_.empty()) {
    const auto file = file_of(s, id);
    auto tmp = file;
    tmp += ".tmp";
    std::array<std::byte, kRecordSize> bytes{};
    std::memcpy(bytes.data(), &r.peer, 4);
    layout::store_u64(bytes.data() + 4, r.version);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return os_error("create", tmp);
    auto s1 = core::write_all(fd, bytes, 0);
    const bool synced = s1.ok() && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!synced) {
      ::unlink(tmp.c_str());
      return s1.ok() ? os_error("fsync", tmp, err) : make_error(errc::io_error, s1.message());
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) return os_error("rename", tmp);
    FERRY_TRY_STATUS(fsync_path(dir_, O_RDONLY | O_DIRECTORY));
  }
  std::lock_guard lock(mu_);
  records_[{s, id}] = r;
  return {};
}

result<void> move_log::erase(side s, const object_id& id) {
  {
    std::lock_guard lock(mu_);
    if (records_.erase({s, id}) == 0) return {};
  }
  if (dir_.empty()) return {};
  if (::unlink(file_of(s, id).c_str()) != 0 && errno != ENOENT) return os_error("unlink", file_of(s, id));
  return fsync_path(dir_, O_RDONLY | O_DIRECTORY);
}

std::optional<move_log::record> move_log::find(side s, const object_id& id) const {
  std::lock_guard lock(mu_);
  auto it = records_.find({s, id});
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<object_id, move_log::record>> move_log::list(side s) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<object_id, record>> out;
  for (const auto& [key, r] : records_)
    if (key.first == s) out.emplace_back(key.second, r);
  return out;
}

}  // namespace ferry::object
