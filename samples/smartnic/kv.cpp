#include "kv.hpp"

namespace {

// The slot holding `key`, or the empty slot where it would go.
const smartnic::slot* probe(const smartnic::slot* t, std::uint64_t capacity, std::uint64_t key) {
  std::uint64_t at = (key * 0xff51afd7ed558ccdull) >> 17;
  for (std::uint64_t i = 0; i < capacity; ++i) {
    const smartnic::slot* s = &t[(at + i) & (capacity - 1)];
    if (s->key == key || s->key == 0) return s;
  }
  return nullptr;  // full, and not there
}

}  // namespace

std::uint64_t kv_fill(ferry::context& cx, ferry::ref<smartnic::slot> table, std::uint64_t capacity,
                      std::uint64_t count) {
  smartnic::slot* t = cx.local(table, capacity);
  for (std::uint64_t i = 0; i < capacity; ++i) t[i] = smartnic::slot{};
  std::uint64_t inserted = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t key = smartnic::key_at(i);
    auto* s = const_cast<smartnic::slot*>(probe(t, capacity, key));
    if (!s) break;
    inserted += s->key == 0;
    *s = smartnic::slot{key, smartnic::value_of(key)};
  }
  return inserted;
}

smartnic::lookup kv_get(ferry::context& cx, ferry::ref<smartnic::slot> table, std::uint64_t capacity,
                        std::uint64_t key) {
  const smartnic::slot* s = probe(cx.view(table, capacity), capacity, key);
  const bool found = s && s->key == key;
  return smartnic::lookup{found ? s->value : 0, found ? 1u : 0u, cx.node()};
}

smartnic::batch kv_get_batch(ferry::context& cx, ferry::ref<smartnic::slot> table, std::uint64_t capacity,
                             std::uint64_t first, std::uint64_t count) {
  const smartnic::slot* t = cx.view(table, capacity);
  smartnic::batch b;
  b.node = cx.node();
  for (std::uint64_t i = first; i < first + count; ++i) {
    const std::uint64_t key = smartnic::key_at(i);
    const smartnic::slot* s = probe(t, capacity, key);
    if (s && s->key == key) {
      ++b.hits;
      b.mix = smartnic::mix_in(b.mix, s->value);
    }
  }
  return b;
}
