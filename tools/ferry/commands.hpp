// Subcommands of the `ferry` command.
#pragma once

#include <CLI/CLI.hpp>

namespace ferry::cli {

/// `ferry objects ls|get|put|rm|fsck` on a persistent object store.
void add_objects_command(CLI::App& app);

/// `ferry node`: run one data node.
void add_node_command(CLI::App& app);

/// `ferry launch -n N -- PROGRAM`: a local cluster around one program.
void add_launch_command(CLI::App& app);

/// `ferry inspect BINARY [--json]`: code objects embedded in a binary (inspect.cpp).
void add_inspect_command(CLI::App& app);

/// `ferry bench`: the group every benchmark subcommand joins (created on first use).
CLI::App& bench_group(CLI::App& app);

/// `ferry bench jit [--json]`: JIT load, cache and per-call figures.
void add_bench_jit_command(CLI::App& app);

/// `ferry bench invoke [--tls shm|tcp] [--json]`: invocation vs raw UCX AM
/// (runs the ferry-bench-invoke program installed next to ferry).
void add_bench_invoke_command(CLI::App& app);

/// `ferry bench mobility [--tls shm|tcp] [--json]`: pointer walks, moves and
/// stale owner caches (runs the ferry-bench-mobility program installed next
/// to ferry).
void add_bench_mobility_command(CLI::App& app);

/// Exit status chosen by the subcommand that ran (0 unless it failed).
int exit_code();
void set_exit_code(int code);

}  // namespace ferry::cli
