// jit/object_cache.hpp — compiled object files, in memory and on disk.
//
// Key: BLAKE2b-256 over (format version, the build's hash of the sources
// that decide the machine code, variant bitcode hash, variant
// triple/cpu/features, the node's codegen triple/cpu/features, tier, LLVM
// version). Disk entries are `<dir>/<key hex>.o`: 8-byte magic "FRYJITO1",
// BLAKE2b-256 of the payload, payload (an ELF relocatable). A damaged or
// truncated file is ignored (and replaced by the next compile), never linked.
// Files are written to a temporary name and renamed, so a reader sees a whole
// entry or none, even with several nodes sharing the directory.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <ferry/code_object.hpp>
#include "jit.hpp"

namespace ferry::jitd {

using cache_key = std::array<std::uint8_t, 32>;
using object_bytes = std::shared_ptr<const std::vector<char>>;

cache_key make_cache_key(const code_variant& v, const jit_target& node, jit_tier tier, bool metered, bool checked);
std::string to_hex(const cache_key& k);

class object_cache {
 public:
  /// `dir` empty: memory only.
  object_cache(std::filesystem::path dir, std::size_t memory_budget);

  object_bytes find_in_memory(const cache_key& k) const;
  /// Reads, checks and (on success) promotes a disk entry into memory.
  object_bytes find_on_disk(const cache_key& k);
  /// Keep `obj` in memory now and (best effort) on disk at the next
  /// write_pending(): the file write (about 0.4 ms here) stays off the path
  /// of the load that compiled it.
  void store(const cache_key& k, const object_bytes& obj);
  /// Write the objects store() kept since the last call to the cache
  /// directory. The engine calls it after each compile job has answered.
  void write_pending();

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  void remember(const cache_key& k, const object_bytes& obj);
  void write_to_disk(const cache_key& k, const object_bytes& obj) const;

  std::filesystem::path dir_;
  std::size_t budget_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, object_bytes> memory_;  // key hex -> object
  std::deque<std::string> order_;                          // oldest first
  std::size_t bytes_ = 0;
  std::vector<std::pair<cache_key, object_bytes>> unwritten_;  // store()d, not yet on disk (mu_)
};

/// $XDG_CACHE_HOME/ferry/jit or ~/.cache/ferry/jit (or ./.ferry-jit-cache
/// when neither variable is set).
std::filesystem::path default_cache_dir();

}  // namespace ferry::jitd
