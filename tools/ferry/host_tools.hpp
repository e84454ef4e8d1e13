// Running the host's administration tools (ip, tc, nsenter, losetup, mkfs,
// mount) for the emulated devices of `ferry launch` (dpu.cpp, storage.cpp).
#pragma once

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

}  // namespace ferry::cli
