// `ferry bench invoke`: runs ferry-bench-invoke (installed next to ferry),
// which carries the mobile functions and the bare-UCX baseline.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"

namespace ferry::cli {

void add_bench_invoke_command(CLI::App& app) {
  struct args {
    std::string transport = "ucx", tls = "shm";
    bool json = false;
    int iterations = 2000, batches = 7, window = 32, total = 50000;
  };
  auto a = std::make_shared<args>();
  auto* cmd = bench_group(app).add_subcommand(
      "invoke",
      "Invocation vs bare UCX active messages between the same two processes:\n"
      "warm round trip (8 B argument), cold first call (ship + JIT + run), pipelined rate");
  cmd->add_option("-t,--transport", a->transport, "Transport (only ucx: the baseline is bare UCX)")
      ->check(CLI::IsMember({"ucx"}));
  cmd->add_option("--tls", a->tls, "UCX transport between the two processes")->check(CLI::IsMember({"shm", "tcp"}));
  cmd->add_flag("--json", a->json, "Print a JSON list of {name, baseline, ferry, ratio, unit}");
  cmd->add_option("--iterations", a->iterations, "Round trips per batch (median of batches reported)")
      ->check(CLI::Range(10, 1000000));
  cmd->add_option("--batches", a->batches, "Batches per latency case")->check(CLI::Range(1, 101));
  cmd->add_option("--window", a->window, "Messages or calls in flight for the rate cases")->check(CLI::Range(1, 4096));
  cmd->add_option("--total", a->total, "Messages or calls per rate case")->check(CLI::Range(100, 100000000));
  cmd->callback([a] {
    const auto program = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "ferry-bench-invoke";
    std::vector<std::string> argv{program.string(), "--transport", a->transport, "--tls", a->tls,
                                  "--iterations", std::to_string(a->iterations), "--batches", std::to_string(a->batches),
                                  "--window", std::to_string(a->window), "--total", std::to_string(a->total)};
    if (a->json) argv.emplace_back("--json");
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
