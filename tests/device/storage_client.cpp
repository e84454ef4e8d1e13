// The client of test_storage.sh. Two steps, each in its own `ferry launch`
// over the same --store-root, so the storage node restarts in between:
//   storage_client write MIB   creates a MIB-MiB object on the storage node
//                              (the last node), fills it, prints
//                              "object ID CHECKSUM" and checks a near-storage
//                              scan (mobile code reading it with cx.read:
//                              near_storage_scan of samples/near_storage)
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

#include "near_storage/table_scan.hpp"

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
      near_storage::summary written;
      for (std::uint64_t at = 0; at < n; at += chunk.size()) {
        const std::uint64_t count = std::min<std::uint64_t>(chunk.size(), n - at);
        for (std::uint64_t i = 0; i < count; ++i) chunk[i] = near_storage::row_at(at + i);
        rt.objects().put(data + at, std::span<const std::uint64_t>(chunk.data(), count));
        near_storage::accumulate(written, chunk.data(), count, near_storage::query{});
      }
      expected = written.checksum;
      std::printf("object %s %" PRIu64 " %" PRIu64 "\n", data.id.to_string().c_str(), n, expected);
    } else {
      data.id = ferry::object_id::parse(argv[2]).value();
      n = std::strtoull(argv[3], nullptr, 10);
      expected = std::strtoull(argv[4], nullptr, 10);
      // The object's bytes pulled to the client: what a scan costs without shipping code.
      const auto t0 = std::chrono::steady_clock::now();
      const auto pulled = rt.objects().get(data, n);
      near_storage::summary here;
      near_storage::accumulate(here, pulled.data(), n, near_storage::query{});
      const bool same = here.checksum == expected;
      std::fprintf(stderr, "pull %" PRIu64 " MiB to the client and scan it there: %.1f ms\n", n * 8 >> 20,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      std::printf("object came back %s\n", same ? "intact" : "CHANGED");
      if (!same) return 1;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t near = rt.invoke(&near_storage_scan, data, n, near_storage::query{}).get().checksum;
    std::fprintf(stderr, "near-storage scan of %" PRIu64 " MiB (cx.read, O_DIRECT): %.1f ms\n", n * 8 >> 20,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::printf("near-storage scan %s\n", near == expected ? "ok" : "WRONG");
    return near == expected ? 0 : 1;
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "storage_client: %s\n", e.what());
    return 1;
  }
}
