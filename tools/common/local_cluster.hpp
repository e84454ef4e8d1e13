// A benchmark's own local cluster: `ferry node` processes (found next to the
// benchmark) around a rendezvous directory in a fresh temporary directory;
// the nodes are stopped (by pid) and the directory removed on destruction
// (scratch_servers).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ferry/runtime.hpp>

#include "bootstrap/rendezvous.hpp"
#include "common/child_process.hpp"

namespace ferry::bench {

class local_cluster {
 public:
  /// `nodes` nodes over UCX `tls`, directory scheme `scheme`; node i also
  /// gets `extra(i)` on its command line (e.g. --cores). With `persistent`,
  /// node i keeps its objects in a directory store, `store<i>` in the
  /// cluster's directory (`ferry node --store`).
  local_cluster(std::uint32_t nodes, std::string tls, std::string scheme,
                const std::function<std::vector<std::string>(std::uint32_t)>& extra = {}, bool persistent = false)
      : tls_(std::move(tls)), scheme_(std::move(scheme)), dir_(servers_.dir()) {
    ferry::cluster::rendezvous(dir_ / "rv").init(nodes).value();
    const std::string ferry = ferry_next_to_self();
    for (std::uint32_t i = 0; i < nodes; ++i) {
      std::vector<std::string> argv{ferry,   "node", "--index",     std::to_string(i), "--rendezvous", (dir_ / "rv").string(),
                                    "--tls", tls_,   "--directory", scheme_,           "--jit-cache",  (dir_ / "jit").string()};
      if (extra)
        for (auto& a : extra(i)) argv.push_back(std::move(a));
      if (persistent) {
        argv.push_back("--store");
        argv.push_back((dir_ / ("store" + std::to_string(i))).string());
      }
      servers_.start(std::move(argv));
    }
  }
  local_cluster(const local_cluster&) = delete;
  local_cluster& operator=(const local_cluster&) = delete;

  /// A client of the cluster; `caller_speed` as runtime_options::caller_speed.
  [[nodiscard]] std::unique_ptr<ferry::runtime> client(double caller_speed = 0) const {
    ferry::runtime_options ro;
    ro.rendezvous = dir_ / "rv";
    ro.tls = tls_;
    ro.directory = scheme_;
    ro.caller_speed = caller_speed;
    return std::make_unique<ferry::runtime>(ro);
  }

 private:
  scratch_servers servers_{"ferry-bench"};  // the nodes and their directory
  std::string tls_, scheme_;
  std::filesystem::path dir_;
};

}  // namespace ferry::bench
