// `ferry bench invoke|chase|ifunc|graph|mobility|placement|device [OPTIONS]`: benchmarks that are programs of their
// own (they carry mobile functions and bare-UCX baselines) and are installed
// next to ferry; ferry runs them with the same options, and they answer
// --help themselves.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"

namespace ferry::cli {
namespace {

/// `ferry bench NAME ARGS...` runs `program FIXED_ARGS... ARGS...`.
void add_bench_program(CLI::App& app, const std::string& name, const std::string& program, const std::string& help,
                       std::vector<std::string> fixed_args = {}) {
  auto* cmd = bench_group(app).add_subcommand(name, help);
  cmd->prefix_command();  // every argument goes to the program
  cmd->set_help_flag();   // ... --help included
  cmd->callback([cmd, name, program, fixed_args] {
    const auto path = std::filesystem::read_symlink("/proc/self/exe").parent_path() / program;
    std::vector<std::string> argv{path.string()};
    argv.insert(argv.end(), fixed_args.begin(), fixed_args.end());
    for (const auto& a : cmd->remaining()) argv.push_back(a);
    std::vector<char*> raw;
    for (auto& s : argv) raw.push_back(s.data());
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    fmt::print(stderr, "ferry bench {}: cannot run {}: {} (it is installed next to ferry)\n", name, path.string(),
               std::strerror(errno));
    set_exit_code(127);
  });
}

}  // namespace

void add_bench_program_commands(CLI::App& app) {
  add_bench_program(app, "invoke", "ferry-bench-invoke",
                    "Invocation vs bare UCX active messages, measured in rounds back to back: warm round trip,\n"
                    "cold first call, pipelined rate (`ferry bench invoke --help` lists the options)");
  add_bench_program(app, "chase", "ferry-pointer-chase",
                    "Pointer chase over S server processes: ferry's shipped code vs a pre-deployed UCX AM handler\n"
                    "and one-sided UCX gets, depth sweep (`ferry bench chase --help` lists the options)");
  add_bench_program(app, "ifunc", "ferry-pointer-chase",
                    "The same pointer chase as a UCX ifunc through ferry's compat library (libferry_ucp_ifunc) vs\n"
                    "the pre-deployed UCX AM handler, one-sided UCX gets and ferry's forwarded call, and through\n"
                    "<ferry/ifunc.h> on the ferry nodes vs the forwarded call, one run; depth 1 is the round trip\n"
                    "(`ferry bench ifunc --help` lists the options)",
                    {"--report", "ifunc"});
  add_bench_program(app, "graph", "ferry-graph",
                    "Graph analysis over S server processes: BFS, PageRank and connected components with the code\n"
                    "sent to the partitions vs pulling the adjacency to the caller, checked against Boost.Graph\n"
                    "(`ferry bench graph --help` lists the options)");
  add_bench_program(app, "mobility", "ferry-bench-mobility",
                    "Pointer walks by forwarded calls vs one call per element, migrate vs a copy by the caller,\n"
                    "calls with stale vs fresh owner caches for both directory schemes, on three local nodes\n"
                    "(`ferry bench mobility --help` lists the options)");
  add_bench_program(app, "placement", "ferry-bench-placement",
                    "The Alice/Bob/Carol case (Bob saturated, Carol idle): fixed-owner vs automatic placement,\n"
                    "latency and throughput; round trips per call vs owner-cache staleness for both directory\n"
                    "schemes as CSV (`ferry bench placement --help` lists the options)");
  add_bench_program(app, "device", "ferry-bench-device",
                    "Cold and warm call on the emulated aarch64 DPU vs a host node, near-storage scan (cx.read)\n"
                    "vs pulling the object, under `ferry launch -n 3 --dpu 1 --storage 1` (root, qemu; --csv FILE)");
}

}  // namespace ferry::cli
