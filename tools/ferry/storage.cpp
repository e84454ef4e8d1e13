#include "storage.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "host_tools.hpp"

namespace ferry::cli {

namespace fs = std::filesystem;

result<std::unique_ptr<storage_device>> storage_device::attach(const fs::path& image, std::uint64_t size,
                                                               const fs::path& mount_point) {
  if (!fs::exists(image)) {
    const int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const int e = errno;
      if (fd >= 0) ::close(fd);
      return make_error(errc::io_error, fmt::format("storage image {}: {}", image.string(), std::strerror(e)));
    }
    ::close(fd);
  }
  std::unique_ptr<storage_device> d(new storage_device);
  FERRY_TRY(d->device_, run_tool({"losetup", "--direct-io=on", "--find", "--show", image.string()}));
  if (!run_tool({"blkid", "-p", d->device_}))  // no file system yet (blkid exits 2)
    FERRY_TRY_STATUS(run_tool({"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", d->device_}));
  std::error_code ec;
  fs::create_directories(mount_point, ec);
  FERRY_TRY_STATUS(run_tool({"mount", "-o", "noatime", d->device_, mount_point.string()}));
  d->mount_ = mount_point;
  d->mounted_ = true;
  return d;
}

result<void> storage_device::throttle(const std::string& name, std::uint64_t bytes_per_second) {
  struct stat st {};
  if (::stat(device_.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
    return make_error(errc::io_error, fmt::format("{} is not a block device", device_));
  FERRY_TRY(const fs::path dir, make_cgroup("blkio", name));
  cgroup_ = name;
  cgroup_dir_ = dir;
  const std::string rule = fmt::format("{}:{} {}", major(st.st_rdev), minor(st.st_rdev), bytes_per_second);
  FERRY_TRY_STATUS(write_setting((dir / "blkio.throttle.read_bps_device").string(), rule));
  FERRY_TRY_STATUS(write_setting((dir / "blkio.throttle.write_bps_device").string(), rule));
  return {};
}

result<void> storage_device::admit(pid_t pid) {
  if (cgroup_.empty()) return {};
  return write_setting((cgroup_dir_ / "cgroup.procs").string(), std::to_string(pid));
}

void storage_device::sweep_stale(const fs::path& tmp) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tmp, ec)) {
    unsigned long owner = 0;
    char dash = 0;
    if (std::sscanf(e.path().filename().c_str(), "ferry-storage-%lu%c", &owner, &dash) != 2 || dash != '-') continue;
    if (::kill(static_cast<pid_t>(owner), 0) == 0 || errno != ESRCH) continue;
    // Its mounts, from /proc/mounts ("DEVICE MOUNT_POINT TYPE ..."): unmount,
    // then detach the loop device. Only then are the directories removed.
    const std::string prefix = e.path().string() + "/";
    std::ifstream mounts("/proc/mounts");
    std::vector<std::pair<std::string, std::string>> found;
    for (std::string line; std::getline(mounts, line);) {
      std::istringstream fields(line);
      std::string device, point;
      if (fields >> device >> point && point.compare(0, prefix.size(), prefix) == 0) found.emplace_back(device, point);
    }
    bool all_unmounted = true;
    for (const auto& [device, point] : found) {
      if (!run_tool({"umount", point})) {
        all_unmounted = false;
        continue;
      }
      if (device.rfind("/dev/loop", 0) == 0) (void)run_tool({"losetup", "-d", device});
    }
    if (!all_unmounted) continue;
    for (const auto& sub : fs::directory_iterator(e.path(), ec)) ::rmdir(sub.path().c_str());
    ::rmdir(e.path().c_str());
  }
}

storage_device::~storage_device() {
  if (!cgroup_.empty()) remove_cgroup("blkio", cgroup_);  // its node has exited
  if (mounted_) (void)run_tool({"umount", mount_.string()});
  if (!device_.empty()) (void)run_tool({"losetup", "-d", device_});
  if (mounted_) {
    std::error_code ec;
    fs::remove(mount_, ec);
  }
}

}  // namespace ferry::cli
