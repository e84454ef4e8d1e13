// The client of test_storage.sh. Two steps, each in its own `ferry launch`
// over the same --store-root, so the storage node restarts in between:
//   storage_client write MIB   creates a MIB-MiB object on the storage node
//                              (the last node), fills it, prints
//                              "object ID CHECKSUM" and checks a near-storage
//                              scan (mobile code reading it with cx.read)
//   storage_client check ID WORDS CHECKSUM
//                              the object came back: its bytes (pulled to
//                              the client) have that checksum, and the
//                              near-storage scan returns it too
// Exit status 0 only if every check held.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <ferry/runtime.hpp>

namespace {

constexpr std::uint64_t kSeed = 0xcbf29ce484222325ull;

std::uint64_t checksum(const std::uint64_t* v, std::uint64_t n, std::uint64_t h) {
  for (std::uint64_t i = 0; i < n; ++i) h = (h ^ v[i]) * 0x100000001b3ull;
  return h;
}

std::uint64_t value_at(std::uint64_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull ^ (i >> 7); }

}  // namespace

/// Near-storage scan: streams the object from where the node keeps it (with
/// O_DIRECT from a storage node's device) in 256 KiB chunks into a buffer on
/// the stack, instead of mapping it whole. (O_DIRECT reads are synchronous
/// and see no readahead: larger chunks mean fewer device round trips.)
[[ferry::mobile]] std::uint64_t scan(ferry::context& cx, ferry::ref<std::uint64_t> data, std::uint64_t n) {
  constexpr std::uint64_t kWords = 32768;
  std::uint64_t buf[kWords];
  std::uint64_t h = kSeed;
  for (std::uint64_t at = 0; at < n; at += kWords) {
    const std::uint64_t count = n - at < kWords ? n - at : kWords;
    cx.read(data + at, buf, count);
    h = checksum(buf, count, h);
  }
  return h;
}

int main(int argc, char** argv) {
  const std::string step = argc > 1 ? argv[1] : "";
  if (!((step == "write" && argc == 3) || (step == "check" && argc == 5))) {
    std::fprintf(stderr, "usage: storage_client write MIB | storage_client check ID WORDS CHECKSUM\n");
    return 2;
  }
  try {
    ferry::runtime rt(argc, argv);
    const auto nodes = rt.nodes();
    const auto& storage = nodes.back();
    if (storage.kind != FERRY_NODE_STORAGE) {
      std::fprintf(stderr, "storage_client: the last node is not a storage node\n");
      return 1;
    }
    ferry::ref<std::uint64_t> data;
    std::uint64_t n = 0, expected = 0;
    if (step == "write") {
      n = std::strtoull(argv[2], nullptr, 10) * (std::uint64_t{1} << 20) / sizeof(std::uint64_t);
      data = rt.objects().create<std::uint64_t>(n, ferry::on_node(storage.id));
      std::vector<std::uint64_t> chunk(1 << 17);  // 1 MiB puts
      expected = kSeed;
      for (std::uint64_t at = 0; at < n; at += chunk.size()) {
        const std::uint64_t count = std::min<std::uint64_t>(chunk.size(), n - at);
        for (std::uint64_t i = 0; i < count; ++i) chunk[i] = value_at(at + i);
        rt.objects().put(data + at, std::span<const std::uint64_t>(chunk.data(), count));
        expected = checksum(chunk.data(), count, expected);
      }
      std::printf("object %s %" PRIu64 " %" PRIu64 "\n", data.id.to_string().c_str(), n, expected);
    } else {
      data.id = ferry::object_id::parse(argv[2]).value();
      n = std::strtoull(argv[3], nullptr, 10);
      expected = std::strtoull(argv[4], nullptr, 10);
      // The object's bytes pulled to the client: what a scan costs without shipping code.
      const auto t0 = std::chrono::steady_clock::now();
      const auto pulled = rt.objects().get(data, n);
      const bool same = checksum(pulled.data(), n, kSeed) == expected;
      std::fprintf(stderr, "pull %" PRIu64 " MiB to the client and scan it there: %.1f ms\n", n * 8 >> 20,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      std::printf("object came back %s\n", same ? "intact" : "CHANGED");
      if (!same) return 1;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t near = rt.invoke(&scan, data, n).get();
    std::fprintf(stderr, "near-storage scan of %" PRIu64 " MiB (cx.read, O_DIRECT): %.1f ms\n", n * 8 >> 20,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::printf("near-storage scan %s\n", near == expected ? "ok" : "WRONG");
    return near == expected ? 0 : 1;
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "storage_client: %s\n", e.what());
    return 1;
  }
}
