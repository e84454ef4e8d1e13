// Running the host's administration tools (ip, tc, nsenter, losetup, mkfs,
// mount) for the emulated devices of `ferry launch` (dpu.cpp, storage.cpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::cli {

/// Run `argv` to completion. Its output (stdout and stderr, trailing newlines
/// removed) on exit status 0; else io_error quoting the command and what it
/// printed.
result<std::string> run_tool(const std::vector<std::string>& argv);

/// Write `value` to a file of /proc or /sys; io_error naming both otherwise.
result<void> write_setting(const std::string& path, const std::string& value);

/// The cgroups of `ferry launch`'s devices: cgroup v1 directories
/// /sys/fs/cgroup/<controller>/ferry-<launcher pid>-<device>.
/// make_cgroup creates one (unsupported, naming the controller, if it cannot);
/// remove_cgroup removes it, waiting up to 2 s for the kernel to detach a
/// task that just died; sweep_stale_cgroups removes those (cpu, memory,
/// blkio) whose launcher no longer runs (it was killed outright).
result<std::filesystem::path> make_cgroup(const std::string& controller, const std::string& name);
void remove_cgroup(const std::string& controller, const std::string& name);
void sweep_stale_cgroups();

}  // namespace ferry::cli
