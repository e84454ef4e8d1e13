// The `ferry` command. Each subcommand lives in its own file and registers
// itself through add_*_command(); this file only assembles them.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace ferry::cli {
CLI::App& bench_group(CLI::App& app) {
  for (auto* s : app.get_subcommands([](CLI::App* s) { return s->get_name() == "bench"; })) return *s;
  auto* bench = app.add_subcommand("bench", "Benchmarks: raw figures, ferry figures and their ratio");
  bench->require_subcommand(1);
  return *bench;
}
}  // namespace ferry::cli

int main(int argc, char** argv) {
  CLI::App app{"ferry: ship code to data.\n\n"
               "Run `ferry <command> --help` for the options of one command."};
  app.set_version_flag("-V,--version", "ferry " FERRY_VERSION);
  app.require_subcommand(1);
  ferry::cli::add_node_command(app);
  ferry::cli::add_objects_command(app);
#ifndef FERRY_NODE_ONLY  // the aarch64 DPU build runs nodes only (CMakeLists.txt)
  ferry::cli::add_launch_command(app);
  ferry::cli::add_inspect_command(app);
  ferry::cli::add_sign_command(app);
  ferry::cli::add_ifunc_command(app);
  ferry::cli::add_stats_command(app);
  ferry::cli::add_bench_jit_command(app);
  ferry::cli::add_bench_store_command(app);
  ferry::cli::add_bench_program_commands(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {  // a subcommand's bug: a message and exit 1, not an abort
    std::fprintf(stderr, "ferry: internal error: %s\n", e.what());
    return 1;
  }
  return ferry::cli::exit_code();
}
