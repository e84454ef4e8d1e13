// Bootstrap: how the processes of one cluster learn who they are and each
// other's transport addresses, out of band (docs/platform-notes.md: exchanged worker
// addresses connect 5–10x faster than a UCX listener, which cannot do shm).
// Only addresses travel here; every frame after that goes over the transport.
//
// Three ways, one interface:
//
//   rendezvous directory  --rendezvous DIR / FERRY_RENDEZVOUS   `ferry launch`, or hosts sharing DIR
//   host list             --hosts LIST|FILE / FERRY_HOSTS       several machines, no launcher
//   PMIx                  under mpirun / srun (PMIX_RANK set)   the job launcher numbers the processes
//
// open_bootstrap() picks one, by the same rule for nodes and clients:
//   1. an explicit mode (--bootstrap / FERRY_BOOTSTRAP: rendezvous|hosts|pmix);
//   2. else a rendezvous directory, if one is given;
//   3. else a host list, if one is given;
//   4. else PMIx, if the process runs under a PMIx launcher (PMIX_RANK is set);
//   5. else errc::invalid_argument naming the three ways.
//
// Members are numbered: data nodes 0..N-1, clients N.. (wire/frames.hpp).
// Node i is told its index (rendezvous, host list) or is rank i (PMIx); a
// client's index is claimed (rendezvous: an O_EXCL file; host list: granted
// by node 0) or is its rank (PMIx).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <ferry/status.hpp>

#include "wire/frames.hpp"

namespace ferry::cluster {

using wire::node_index;

enum class bootstrap_role { node, client };

struct bootstrap_options {
  /// "rendezvous", "hosts", "pmix"; empty: chosen by the rule above.
  std::string mode;
  /// Rendezvous directory (`ferry launch` creates it; rendezvous.hpp).
  std::filesystem::path rendezvous;
  /// Host list: a file with one HOST:PORT per line, or the entries inline,
  /// comma-separated (host_list.hpp). Entry i is node i's bootstrap port.
  std::string hosts;
  /// Nodes: this node's index. Required with a rendezvous directory or a host
  /// list; under PMIx the index is the rank (if given, it must match).
  std::optional<node_index> index;
  /// PMIx: ranks 0..nodes-1 are the data nodes. Unset: FERRY_NODES if set,
  /// else the ranks of the job's first app (`mpirun -np N ferry node : -np 1
  /// PROGRAM`).
  std::optional<std::uint32_t> nodes;
  /// How long opening may wait (for the cluster size, for node 0 to grant a
  /// client index, for the PMIx server).
  std::chrono::milliseconds timeout{20000};
};

/// One process's view of its cluster's membership. Not thread-safe: the
/// process's join uses it, then leave() once at the end.
class bootstrap {
 public:
  virtual ~bootstrap() = default;

  /// "rendezvous /tmp/ferry-cluster-x", "hosts a:7000,b:7000", "pmix job 123"
  /// — for messages.
  [[nodiscard]] virtual std::string describe() const = 0;
  /// Number of data nodes N.
  [[nodiscard]] virtual std::uint32_t nodes() const = 0;
  /// This process's member index: < N for a node, unique >= N for a client.
  [[nodiscard]] virtual node_index self() const = 0;

  /// Make this process's transport address known. A node must publish before
  /// anyone can reach it. A client publishes so that a restarted node can say
  /// hello to it (where the bootstrap keeps client addresses, see clients()).
  /// PMIx: a collective over the job (Put, Commit, Fence).
  virtual result<void> publish(std::span<const std::uint8_t> address) = 0;

  /// The addresses of nodes 0..N-1, waiting until every node has published or
  /// `timeout` passes: errc::timeout naming the missing nodes (and, for a host
  /// list, why each could not be reached).
  virtual result<std::vector<std::vector<std::uint8_t>>> node_addresses(std::chrono::milliseconds timeout) = 0;

  /// Clients that published an address, as (index, address): a (re)starting
  /// node says hello to them, so that clients of a restarted node reconnect.
  /// Empty where the bootstrap keeps no client addresses (host list, PMIx);
  /// there the other nodes pass a restarted node's hello on to their clients
  /// (docs/protocol.md, "Membership").
  virtual std::vector<std::pair<node_index, std::vector<std::uint8_t>>> clients() const = 0;

  /// True when the launcher scopes the cluster to one job (PMIx): the nodes
  /// serve until every client has called leave(), then stop.
  [[nodiscard]] virtual bool job_scoped() const { return false; }

  /// This process is done with the cluster. A client calls it once when its
  /// runtime goes (rendezvous: its member file is removed). Under PMIx it is a
  /// collective: a node's call returns once every client of the job has left.
  virtual result<void> leave() = 0;
};

/// Open the bootstrap chosen by `options` (see the rule at the top) for a
/// process of `role`. Errors: invalid_argument (no way to bootstrap given,
/// unknown mode, missing or out-of-range node index), bad_format (a host-list
/// line), unsupported (PMIx asked for but this process has no PMIx server),
/// timeout (the cluster did not appear within options.timeout), io_error.
result<std::unique_ptr<bootstrap>> open_bootstrap(bootstrap_role role, const bootstrap_options& options);

/// The implementations open_bootstrap() chooses from (one file each; the
/// PMIx and socket details stay in pmix.cpp and host_list.cpp).
namespace detail {
result<std::unique_ptr<bootstrap>> open_rendezvous(bootstrap_role role, const bootstrap_options& options);
result<std::unique_ptr<bootstrap>> open_host_list(bootstrap_role role, const bootstrap_options& options);
result<std::unique_ptr<bootstrap>> open_pmix(bootstrap_role role, const bootstrap_options& options);
}  // namespace detail

}  // namespace ferry::cluster
