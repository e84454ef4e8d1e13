// `ferry bench device` (this program; `ferry bench device` runs it): what the
// device nodes of docs/devices.md cost and save, in one run of
// `ferry launch -n 3 --dpu 1 --storage 1` (node 0 host, node 1 the aarch64
// DPU under qemu, node 2 the storage node on a loop device):
//
//   cold call        baseline: the first call on the host node (code shipped,
//                              JIT-compiled there; every node starts with an
//                              empty JIT cache)
//                    ferry:    the first call on the DPU node (the aarch64
//                              variant, compiled under qemu)
//   warm call        baseline: the median warm call on the host node
//                    ferry:    on the DPU node
//   scan N MiB       baseline: pull the object from the storage node to the
//                              caller and checksum it there
//                    ferry:    ship the scan to the storage node: mobile code
//                              streams the object with cx.read (O_DIRECT):
//                              near_storage_scan of samples/near_storage
//
// Every scan's checksum must equal the pulled bytes' (exit 1 otherwise).
// Started without a cluster, the program runs itself under `ferry launch`
// with a fresh JIT cache (XDG_CACHE_HOME) and removes it afterwards.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "common/bench_report.hpp"
#include "common/child_process.hpp"
#include "near_storage/table_scan.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kSeed = 0xcbf29ce484222325ull;

std::uint64_t mix(const std::uint64_t* v, std::uint64_t n, std::uint64_t h) {
  for (std::uint64_t i = 0; i < n; ++i) h = (h ^ v[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

/// The cold/warm call: a checksum over the node's small object.
[[ferry::mobile]] std::uint64_t bench_device_sum(ferry::context& cx, ferry::ref<std::uint64_t> data, std::uint64_t n) {
  return mix(cx.view(data, n), n, kSeed);
}

namespace {

struct options {
  bool json = false;
  int warm = 51;                                // warm calls per node (median reported)
  std::vector<std::uint64_t> scan_mib{64, 256};  // object sizes of the scan cases
};

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

void progress(const options& o, std::string_view what) {
  if (!o.json) fmt::print(stderr, "bench device: {}\n", what);
}

const ferry::node_info& node_of_kind(const std::vector<ferry::node_info>& nodes, std::uint32_t kind) {
  for (const auto& n : nodes)
    if (n.kind == kind) return n;
  throw ferry::error(ferry::make_error(ferry::errc::not_found, fmt::format("no node of kind {} in the cluster", kind)));
}

// Cold and warm call of bench_device_sum on the host node and the DPU node.
std::vector<ferry::bench::row> calls(const options& o, ferry::runtime& rt, const ferry::node_info& host,
                                     const ferry::node_info& dpu) {
  constexpr std::uint64_t n = 1024;
  std::vector<std::uint64_t> values(n);
  for (std::uint64_t i = 0; i < n; ++i) values[i] = i * 2654435761u + 7;
  const std::uint64_t want = mix(values.data(), n, kSeed);
  double cold[2], warm[2];
  for (int k = 0; k < 2; ++k) {
    const auto& node = k == 0 ? host : dpu;
    progress(o, fmt::format("cold and {} warm calls on node {} ({}, {})", o.warm, node.id, k == 0 ? "host" : "dpu",
                            node.cpu));
    auto data = rt.objects().create<std::uint64_t>(n, ferry::on_node(node.id));
    rt.objects().put(data, std::span<const std::uint64_t>(values));
    auto t0 = clock_type::now();
    std::uint64_t got = rt.invoke(&bench_device_sum, data, n).get();
    cold[k] = ms_since(t0);
    std::vector<double> samples;
    for (int i = 0; i < o.warm && got == want; ++i) {
      t0 = clock_type::now();
      got = rt.invoke(&bench_device_sum, data, n).get();
      samples.push_back(ms_since(t0) * 1000);
    }
    if (got != want)
      throw ferry::error(ferry::make_error(ferry::errc::corrupt, fmt::format("node {}: wrong checksum", node.id)));
    warm[k] = ferry::bench::median(samples);
    rt.objects().remove(data);
  }
  return {{fmt::format("cold call: host -> DPU ({})", dpu.cpu), cold[0], cold[1], "ms"},
          {fmt::format("warm call: host -> DPU ({})", dpu.cpu), warm[0], warm[1], "us"}};
}

// The scan of an object of `mib` MiB on the storage node, both ways.
ferry::bench::row scan(const options& o, ferry::runtime& rt, const ferry::node_info& storage, std::uint64_t mib) {
  const std::uint64_t n = mib << 17;  // 64-bit words
  progress(o, fmt::format("a {} MiB object on the storage node (node {})", mib, storage.id));
  auto data = rt.objects().create<std::uint64_t>(n, ferry::on_node(storage.id));
  ferry::call_options long_call;
  long_call.deadline = std::chrono::minutes(10);
  rt.invoke_with(long_call, &near_storage_fill, data, n).get();
  // The scan's code compiled optimized first, as the pull's is (native).
  ferry::preload_options optimized;
  optimized.optimized = true;
  rt.preload(&near_storage_scan, ferry::on_node(storage.id), optimized).get();
  progress(o, "near-storage scan (cx.read)");
  auto t0 = clock_type::now();
  const std::uint64_t near =
      rt.invoke_with(long_call, &near_storage_scan, data, n, near_storage::query{}).get().checksum;
  const double shipped = ms_since(t0);
  progress(o, "pull to the caller and scan there");
  t0 = clock_type::now();
  const auto pulled = rt.objects().get(data, n);
  near_storage::summary here;
  near_storage::accumulate(here, pulled.data(), n, near_storage::query{});
  const double pull = ms_since(t0);
  rt.objects().remove(data);
  if (near != here.checksum)
    throw ferry::error(ferry::make_error(ferry::errc::corrupt,
                                         fmt::format("{} MiB: the near-storage scan gave {}, the pulled bytes {}", mib,
                                                     near, here.checksum)));
  return {fmt::format("scan {} MiB: pull -> near-storage", mib), pull, shipped, "ms"};
}

// Not in a cluster yet: run this program again under `ferry launch` with a
// fresh JIT cache; its exit status is ours.
int relaunch(int argc, char** argv, const options& o) {
  std::string tmpl = (fs::temp_directory_path() / "ferry-bench-device-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    fmt::print(stderr, "bench device: cannot create a temporary directory\n");
    return 1;
  }
  ::setenv("XDG_CACHE_HOME", tmpl.c_str(), 1);  // every node's JIT cache: empty, so the first call is cold
  std::uint64_t largest = 0;
  for (auto m : o.scan_mib) largest = std::max(largest, m);
  std::vector<std::string> argv_launch{ferry::bench::ferry_next_to_self(), "launch", "-n", "3", "--dpu", "1",
                                       "--storage", "1", "--storage-size", fmt::format("{}MiB", 2 * largest + 256),
                                       "--start-timeout-ms", "120000", "--", ferry::bench::self_path()};
  for (int i = 1; i < argc; ++i) argv_launch.emplace_back(argv[i]);
  const pid_t pid = ferry::bench::start_child(argv_launch);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  std::error_code ec;
  fs::remove_all(tmpl, ec);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"ferry bench device: cold/warm call on the emulated DPU vs a host node, near-storage scan vs pulling "
               "the object (runs `ferry launch -n 3 --dpu 1 --storage 1`; needs root, qemu-aarch64 and the aarch64 "
               "node: docs/devices.md)"};
  app.add_flag("--json", o.json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  app.add_option("--warm", o.warm, "Warm calls per node (the median is reported)")->check(CLI::Range(1, 100000));
  app.add_option("--scan-mib", o.scan_mib, "Object sizes of the scan cases, MiB")
      ->delimiter(',')
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{4096}));
  CLI11_PARSE(app, argc, argv);
  if (!std::getenv("FERRY_RENDEZVOUS")) return relaunch(argc, argv, o);
  try {
    ferry::runtime rt(argc, argv);
    const auto nodes = rt.nodes();
    const auto& host = node_of_kind(nodes, FERRY_NODE_HOST);
    const auto& dpu = node_of_kind(nodes, FERRY_NODE_DPU);
    const auto& storage = node_of_kind(nodes, FERRY_NODE_STORAGE);
    auto rows = calls(o, rt, host, dpu);
    for (const auto mib : o.scan_mib) rows.push_back(scan(o, rt, storage, mib));
    std::string scans;
    for (const auto mib : o.scan_mib) scans += fmt::format("{}{}", scans.empty() ? "" : ",", mib);
    ferry::bench::print_rows(rows, o.json, "baseline",
                             ferry::bench::parameters()
                                 .add("host_cpu", host.cpu)
                                 .add("dpu_cpu", dpu.cpu)
                                 .add("dpu_transport", dpu.transport)
                                 .add("warm", o.warm)
                                 .add("scan_mib", scans));
    return 0;
  } catch (const ferry::error& e) {
    fmt::print(stderr, "bench device: {}\n", e.what());
    return 1;
  }
}
