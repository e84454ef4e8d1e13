// The rendezvous directory: the bootstrap of one host, or of hosts sharing a
// directory (what `ferry launch` sets up; FERRY_RENDEZVOUS; bootstrap.hpp).
//
//   <dir>/size         N, written by the launcher before starting nodes
//   <dir>/node.<i>     transport address of data node i (0 <= i < N)
//   <dir>/member.<k>   claimed by client process k (k >= N) with O_EXCL, then
//                      holding its transport address (a restarted node says
//                      hello to it); removed when the client leaves
//
// Files are written to a temporary name and renamed, so a reader never sees a
// partial address. A restarted node overwrites its node.<i>.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <utility>
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
  /// Record client `index`'s address in its claimed member file.
  result<void> publish_member(wire::node_index index, std::span<const std::uint8_t> address) const;
  /// Give a claimed member index back (its file goes).
  void release_member(wire::node_index index) const;
  /// Clients that recorded an address, as (index, address), by index.
  [[nodiscard]] std::vector<std::pair<wire::node_index, std::vector<std::uint8_t>>> member_addresses() const;
  /// Addresses of nodes 0..n-1, waiting until all are published or `timeout`
  /// passes (errc::timeout naming the missing nodes).
  result<std::vector<std::vector<std::uint8_t>>> node_addresses(std::uint32_t n,
                                                                std::chrono::milliseconds timeout) const;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace ferry::cluster
