// ③⑤ The durable records that make a move crash-consistent (the protocol:
// object/migration.hpp and docs/mobility.md, "Migration"):
//
//  * out  at the source: "object X is committed to node j (as of move v)".
//         Written at the commit point, before the source drops its copy;
//         erased once j says X is live there. A source restarted with it
//         drops any copy it still has and answers j's questions with commit.
//  * in   at the destination: "the pending image of X came from node s".
//         Written once the image is stored in incoming(); erased when X is
//         made live (commit) or dropped (abort). A destination restarted with
//         it asks s what became of the move; an image in incoming() with no
//         record was never acknowledged, and is dropped.
//
// A persistent node keeps the records as files `<store>/moves/<id>.out` and
// `<id>.in` (12 bytes: the peer u32, the version u64, little-endian; written
// to a temporary file, fsynced, renamed, directory fsynced) and pending
// images in a store of their own, `<store>/incoming/`; a memory node keeps
// the same in memory (its objects do not survive it either). Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>
#include <ferry/store.hpp>

#include "wire/frames.hpp"

namespace ferry::object {

class move_log {
 public:
  enum class side : std::uint8_t { out, in };
  struct record {
    wire::node_index peer = wire::kNoNode;  ///< out: the destination; in: the source
    std::uint64_t version = 0;              ///< the object's move count at the destination
  };

  /// The log of the node whose store lives in `store_dir` (empty: memory).
  static result<std::unique_ptr<move_log>> open(const std::filesystem::path& store_dir);

  /// Durable on return for a persistent node.
  result<void> put(side s, const object_id& id, record r);
  result<void> erase(side s, const object_id& id);
  [[nodiscard]] std::optional<record> find(side s, const object_id& id) const;
  [[nodiscard]] std::vector<std::pair<object_id, record>> list(side s) const;
  /// Images received but not yet live (not served, not registered).
  store& incoming() { return *incoming_; }

 private:
  move_log(std::filesystem::path dir, std::unique_ptr<store> incoming) : dir_(std::move(dir)), incoming_(std::move(incoming)) {}
  [[nodiscard]] std::filesystem::path file_of(side s, const object_id& id) const;

  std::filesystem::path dir_;  ///< empty: nothing on disk
  std::unique_ptr<store> incoming_;
  mutable std::mutex mu_;
  std::map<std::pair<side, object_id>, record> records_;
};

}  // namespace ferry::object
