// The emulated computational-storage device of `ferry launch --storage K`
// (docs/devices.md): an image file attached as a loop device with
// `losetup --direct-io=on` (the loop driver reads and writes the file with
// O_DIRECT: no second page cache between the node and the disk), an ext4
// file system on it, mounted privately; the storage node keeps its
// persistent object store there and mobile code streams objects from it
// with O_DIRECT (`cx.read`). With --store-root the image is
// DIR/node<i>.img and outlives the launch: the next launch finds the same
// objects. Optionally a cgroup v1 blkio throttle emulates the device's
// bandwidth. Teardown (~storage_device): remove the throttle, unmount,
// detach the loop device.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <ferry/status.hpp>

namespace ferry::cli {

class storage_device {
 public:
  /// Attach `image` (created sparse with `size` bytes if missing, formatted
  /// ext4 if it holds no file system) and mount it at `mount_point`.
  /// Errors name the step that failed (root and losetup are needed).
  static result<std::unique_ptr<storage_device>> attach(const std::filesystem::path& image, std::uint64_t size,
                                                       const std::filesystem::path& mount_point);
  ~storage_device();
  storage_device(const storage_device&) = delete;
  storage_device& operator=(const storage_device&) = delete;

  /// Emulated device bandwidth: cgroup v1 blkio `name` throttles reads and
  /// writes on this loop device to `bytes_per_second` each, for the
  /// processes admit() puts in it. It throttles what reaches the device as
  /// it is issued: O_DIRECT reads and writes (cx.read) and reads that miss
  /// the page cache, not buffered writes (v1 writeback is not charged to the
  /// writer). Removed with the device.
  result<void> throttle(const std::string& name, std::uint64_t bytes_per_second);
  /// Put process `pid` (the storage node) into the throttle's cgroup; does
  /// nothing without one.
  result<void> admit(pid_t pid);

  /// What launchers killed outright (SIGKILL) left in `tmp`: their
  /// ferry-storage-<launcher pid>-XXXXXX directories, whose mounts are
  /// unmounted and loop devices detached when that launcher no longer runs.
  static void sweep_stale(const std::filesystem::path& tmp);

  /// The loop device ("/dev/loop3") and where its file system is mounted.
  [[nodiscard]] const std::string& device() const { return device_; }
  [[nodiscard]] const std::filesystem::path& mount_point() const { return mount_; }

 private:
  storage_device() = default;
  std::string device_;
  std::filesystem::path mount_;
  bool mounted_ = false;
  std::string cgroup_;               // the blkio throttle's name, if any
  std::filesystem::path cgroup_dir_;  // ... and its directory
};

}  // namespace ferry::cli
