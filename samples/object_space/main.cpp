// Sample: the global object space. A binary tree is spread over three objects
// in a persistent store; its links are ferry::ptr (FOT index + offset). The
// objects are then copied byte for byte into a second store -- what happens
// when data moves to another node -- and the tree is summed again there
// through the same pointers, with no serialization step.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <ferry/store.hpp>

namespace {

struct tree_node {
  std::uint64_t value;
  ferry::ptr<tree_node> left, right;
};

constexpr int kDepth = 12;                     // 4095 nodes
constexpr int kNodes = (1 << kDepth) - 1;
constexpr int kObjects = 3;

// Node i (heap order) lives in object i % 3 at slot i / 3.
ferry::ref<tree_node> where(const ferry::object_id* ids, int i) {
  return {ids[i % kObjects], static_cast<std::uint64_t>(i / kObjects) * sizeof(tree_node)};
}

std::uint64_t sum(const ferry::store& st, ferry::ref<tree_node> at) {
  auto n = st.load(at).value();  // throws ferry::error on any failure
  std::uint64_t s = n.value;
  if (!n.left.is_null()) s += sum(st, st.resolve(at.id, n.left).value());
  if (!n.right.is_null()) s += sum(st, st.resolve(at.id, n.right).value());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir =
      argc > 1 ? std::filesystem::path(argv[1])
               : std::filesystem::temp_directory_path() / ("ferry-demo-" + std::to_string(::getpid()));
  try {
    auto disk = ferry::store::open_directory(dir).value();
    ferry::object_id ids[kObjects];
    for (auto& id : ids) id = disk->create((kNodes / kObjects + 1) * sizeof(tree_node)).value().id;

    std::uint64_t expected = 0;
    for (int i = 0; i < kNodes; ++i) {
      tree_node n{static_cast<std::uint64_t>(i) * 7 + 1, {}, {}};
      expected += n.value;
      const auto self = where(ids, i);
      if (2 * i + 1 < kNodes) n.left = disk->make_ptr(self.id, where(ids, 2 * i + 1)).value();
      if (2 * i + 2 < kNodes) n.right = disk->make_ptr(self.id, where(ids, 2 * i + 2)).value();
      disk->store_value(self, n).value();
    }
    std::printf("built a %d-node tree over %d objects in %s\n", kNodes, kObjects, disk->describe().c_str());
    for (auto id : ids) {
      auto info = disk->stat(id).value();
      std::printf("  object %s  %6llu data bytes  FOT %u entries\n", id.to_string().c_str(),
                  static_cast<unsigned long long>(info.data_size), info.fot_count);
    }
    const auto on_disk = sum(*disk, where(ids, 0));

    auto other = ferry::store::open_memory();
    for (auto id : ids) ferry::copy_object(*disk, *other, id).value();
    const auto after_copy = sum(*other, where(ids, 0));

    std::printf("sum in the persistent store:           %llu\n", static_cast<unsigned long long>(on_disk));
    std::printf("sum after a byte copy to another store: %llu\n", static_cast<unsigned long long>(after_copy));
    std::printf("expected:                               %llu\n", static_cast<unsigned long long>(expected));
    if (argc <= 1) std::filesystem::remove_all(dir);
    if (on_disk != expected || after_copy != expected) {
      std::puts("MISMATCH");
      return 1;
    }
    std::puts("ok: pointers resolved through the FOT before and after the copy");
    return 0;
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "ferry-demo: %s\n", e.what());
    return 1;
  }
}
