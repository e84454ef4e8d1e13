// `ferry bench invoke [OPTIONS]`: runs ferry-bench-invoke (installed next to
// ferry) with the same options; that program carries the mobile functions and
// the bare-UCX baseline, and answers --help itself.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"

namespace ferry::cli {

void add_bench_invoke_command(CLI::App& app) {
  auto* cmd = bench_group(app).add_subcommand(
      "invoke",
      "Invocation vs bare UCX active messages between the same two processes: warm round trip,\n"
      "cold first call, pipelined rate (`ferry bench invoke --help` lists the options)");
  cmd->prefix_command();  // every argument goes to ferry-bench-invoke
  cmd->set_help_flag();   // ... --help included
  cmd->callback([cmd] {
    const auto program = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "ferry-bench-invoke";
    std::vector<std::string> argv{program.string()};
    for (const auto& a : cmd->remaining()) argv.push_back(a);
    std::vector<char*> raw;
    for (auto& s : argv) raw.push_back(s.data());
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    fmt::print(stderr, "ferry bench invoke: cannot run {}: {} (it is installed next to ferry)\n", program.string(),
               std::strerror(errno));
    set_exit_code(127);
  });
}

}  // namespace ferry::cli
