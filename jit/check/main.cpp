// ferry-jit-check: compiles untrusted bitcode for a node in a separate
// process, so a buffer that crashes or hangs LLVM cannot take the node down.
// Speaks the protocol of jit/sandbox.hpp on stdin/stdout; exits at EOF.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <llvm/ADT/StringRef.h>

#include "compile.hpp"
#include "core/posix_io.hpp"
#include "error.hpp"
#include "sandbox.hpp"

namespace {

bool read_all(void* data, std::size_t n) { return ferry::core::read_exact(0, ferry::core::bytes_of(data, n)).ok(); }
bool write_all(const void* data, std::size_t n) { return ferry::core::write_all(1, ferry::core::bytes_of(data, n)).ok(); }

bool reply(ferry::errc code, const std::string& msg, llvm::StringRef object) {
  const auto c = static_cast<std::uint16_t>(code);
  const auto m = static_cast<std::uint32_t>(std::min<std::size_t>(msg.size(), 1u << 16));
  const std::uint64_t o = object.size();
  return write_all(&c, sizeof c) && write_all(&m, sizeof m) && write_all(msg.data(), m) && write_all(&o, sizeof o) &&
         write_all(object.data(), object.size());
}

}  // namespace

int main(int argc, char** argv) {
  ferry::jit_target target;
  llvm::StringSet<> allowed;
  std::uint64_t max_data_bytes = 0;
  bool meter = true;
  bool bounds = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view opt = argv[i];
    if (opt == "--triple") target.triple = argv[i + 1];
    else if (opt == "--cpu") target.cpu = argv[i + 1];
    else if (opt == "--features") target.features = argv[i + 1];
    else if (opt == "--max-data") max_data_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (opt == "--meter") meter = std::string_view(argv[i + 1]) != "0";
    else if (opt == "--bounds") bounds = std::string_view(argv[i + 1]) != "0";
    else if (opt == "--allow") {
      llvm::SmallVector<llvm::StringRef, 64> names;
      llvm::StringRef(argv[i + 1]).split(names, ',', -1, false);
      for (auto n : names) allowed.insert(n);
    } else {
      std::fprintf(stderr, "ferry-jit-check: unknown option %s (run by the ferry JIT, not by hand)\n", argv[i]);
      return 2;
    }
  }
  auto node = ferry::jitd::node_target::resolve(target);
  if (!node) {
    std::fprintf(stderr, "ferry-jit-check: %s\n", llvm::toString(node.takeError()).c_str());
    return 2;
  }
  for (;;) {
    std::uint32_t magic = 0, elen = 0;
    std::uint8_t tier = 0;
    std::uint64_t blen = 0;
    if (!read_all(&magic, 4)) return 0;  // the node closed the connection
    if (magic != ferry::jitd::kCheckMagic || !read_all(&tier, 1) || !read_all(&elen, 4) || elen > 4096) return 3;
    std::string entry(elen, '\0');
    if (!read_all(entry.data(), elen) || !read_all(&blen, 8) || blen > ferry::jitd::kMaxCheckPayload) return 3;
    std::vector<std::uint8_t> bitcode(blen);
    if (!read_all(bitcode.data(), blen)) return 3;

    ferry::jitd::compile_options o;
    o.entry_symbol = entry;
    o.tier = tier == 1 ? ferry::jit_tier::optimized : ferry::jit_tier::fast;
    o.allowed = &allowed;
    o.target = &*node;
    o.max_data_bytes = max_data_bytes;
    o.meter = meter;
    o.bounds = bounds;
    auto obj = ferry::jitd::compile_bitcode(bitcode, o);
    const bool sent = obj ? reply(ferry::errc::ok, {}, (*obj)->getBuffer())
                          : [&] {
                              const auto s = ferry::jitd::to_status(obj.takeError(), ferry::errc::compile_error,
                                                                    "sandboxed compile");
                              return reply(s.code(), s.message(), {});
                            }();
    if (!sent) return 0;
  }
}
