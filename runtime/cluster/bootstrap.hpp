// Bootstrap: how the processes of one cluster learn each other's transport
// addresses without a listener (FACTS.md: out-of-band worker addresses connect
// 5–10x faster than sockaddr, and the listener cannot do shm).
//
// Rendezvous directory (what `ferry launch` sets up; FERRY_RENDEZVOUS):
//   <dir>/node.<i>     transport address of data node i (0 <= i < N)
//   <dir>/member.<k>   claimed by client processes (k >= N), O_EXCL
//   <dir>/size         N, written by the launcher before starting nodes
// Files are written to a temporary name and renamed, so a reader never sees a
// partial address.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

#include <ferry/status.hpp>

#include "wire/frames.hpp"

namespace ferry::cluster {

class rendezvous {
 public:
  explicit rendezvous(std::filesystem::path dir) : dir_(std::move(dir)) {}

  /// The launcher: create the directory and record the node count.
  result<void> init(std::uint32_t nodes) const;
  /// Node count recorded by init(), waiting for it up to `timeout`.
  result<std::uint32_t> size(std::chrono::milliseconds timeout) const;
  /// Publish data node `index`'s address.
  result<void> publish_node(wire::node_index index, std::span<const std::uint8_t> address) const;
  /// Claim the lowest free member index >= nodes (a client process).
  result<wire::node_index> claim_member(std::uint32_t nodes) const;
  /// Addresses of nodes 0..n-1, waiting until all are published or `timeout`
  /// passes (errc::timeout naming the missing nodes).
  result<std::vector<std::vector<std::uint8_t>>> node_addresses(std::uint32_t n,
                                                                std::chrono::milliseconds timeout) const;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace ferry::cluster
