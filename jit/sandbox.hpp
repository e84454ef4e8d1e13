// jit/sandbox.hpp — compile untrusted bitcode in a helper process.
//
// The helper (`ferry-jit-check`, jit/check/main.cpp) runs compile_bitcode()
// — parse, verify, policy, codegen — and returns an object file or a typed
// error. A buffer that crashes or hangs LLVM kills only the helper; the node
// reports errc::corrupt (crash) or errc::timeout (hang) and starts a fresh
// helper for the next request. The helper lives across requests, so the
// exec + libLLVM load cost (~10 ms) is paid once, not per code object.
//
// Protocol over one AF_UNIX stream socket (the helper's stdin and stdout),
// all integers little-endian, version 1:
//   request:  u32 magic "FJC1", u8 tier, u32 entry_len, entry, u64 bc_len, bitcode
//   response: u16 errc, u32 msg_len, msg, u64 obj_len, object (obj_len = 0 on error)
// The helper's command line fixes the target and allow-list:
//   ferry-jit-check --triple T --cpu C --features F --allow sym1,sym2,...
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include "jit.hpp"

namespace ferry::jitd {

inline constexpr std::uint32_t kCheckMagic = 0x31434a46;  // "FJC1"
inline constexpr std::uint64_t kMaxCheckPayload = std::uint64_t{256} << 20;

class sandbox {
 public:
  /// `argv`: the helper command followed by its target/allow-list arguments.
  sandbox(std::vector<std::string> argv, std::chrono::milliseconds timeout, std::uint64_t memory_bytes);
  ~sandbox();
  sandbox(const sandbox&) = delete;
  sandbox& operator=(const sandbox&) = delete;

  /// Compile in the helper. Requests are serialised (one helper).
  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compile(std::span<const std::uint8_t> bitcode,
                                                              const std::string& entry, jit_tier tier,
                                                              bool* helper_failed);

 private:
  llvm::Error spawn();
  // Kill (if needed) and reap the helper; describes how it ended.
  std::string reap(bool kill_it);

  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
  std::uint64_t memory_bytes_;
  std::mutex mu_;
  pid_t pid_ = -1;
  int fd_ = -1;
};

/// Locate ferry-jit-check: $FERRY_JIT_CHECK, <libferry dir>/../bin, the
/// executable's directory. Empty if none exists.
std::string find_check_helper();

}  // namespace ferry::jitd
