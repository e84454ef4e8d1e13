#include "storage.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

storage_device::~storage_device() {
  if (mounted_) (void)run_tool({"umount", mount_.string()});
  if (!device_.empty()) (void)run_tool({"losetup", "-d", device_});
  if (mounted_) {
    std::error_code ec;
    fs::remove(mount_, ec);
  }
}

}  // namespace ferry::cli
