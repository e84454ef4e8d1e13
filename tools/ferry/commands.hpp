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

/// `ferry sign`: keys, and signing a program's code objects in place (sign.cpp).
void add_sign_command(CLI::App& app);

/// `ferry ifunc build|inspect`: UCX ifunc libraries (ifunc.cpp, docs/ifunc.md).
void add_ifunc_command(CLI::App& app);
/// `ferry stats [--json]`: load and placement figures of a running cluster's nodes (stats.cpp).
void add_stats_command(CLI::App& app);

/// `ferry bench`: the group every benchmark subcommand joins (created on first use).
CLI::App& bench_group(CLI::App& app);

/// `ferry bench jit [--json]`: JIT load, cache and per-call figures.
void add_bench_jit_command(CLI::App& app);

/// `ferry bench store [--json]`: a persistent store's durable writes and
/// seal vs the bare file operations (bench_store.cpp).
void add_bench_store_command(CLI::App& app);

/// `ferry bench invoke` (invocation vs raw UCX AM), `ferry bench chase`
/// (pointer chase vs a pre-deployed AM handler and gets) and `ferry bench
/// mobility` (walks, moves, stale caches): run the programs
/// ferry-bench-invoke, ferry-pointer-chase and ferry-bench-mobility
/// installed next to ferry.
void add_bench_program_commands(CLI::App& app);

/// Exit status chosen by the subcommand that ran (0 unless it failed).
int exit_code();
void set_exit_code(int code);

}  // namespace ferry::cli
