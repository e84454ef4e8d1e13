#include "mobility_code.hpp"

namespace rt_test {

std::uint64_t link_list(ferry::context& cx, ferry::ref<list_node> from, ferry::ref<list_node> to) {
  // make_ptr first: a new FOT slot may lay the holder out anew.
  const ferry::ptr<list_node> p = to.is_nil() ? ferry::ptr<list_node>{} : cx.make_ptr(from, to);
  cx.local(from)->next = p;
  return p.bits();
}

std::uint64_t link_tree(ferry::context& cx, ferry::ref<tree_node> parent, ferry::ref<tree_node> child,
                        std::uint32_t side) {
  const ferry::ptr<tree_node> p = child.is_nil() ? ferry::ptr<tree_node>{} : cx.make_ptr(parent, child);
  tree_node* n = cx.local(parent);
  (side == 0 ? n->left : n->right) = p;
  return p.bits();
}

std::uint64_t list_sum(ferry::context& cx, ferry::ref<list_node> at, std::uint64_t acc) {
  for (;;) {
    const list_node* n = cx.view(at);
    acc += n->value;
    if (n->next.is_null()) return acc;
    const ferry::ref<list_node> next = cx.resolve(at, n->next);
    if (!(next.id == at.id)) return cx.forward(&list_sum, next, acc);
    at = next;
  }
}

std::uint64_t bst_find(ferry::context& cx, ferry::ref<tree_node> at, std::uint64_t key, std::uint64_t visited) {
  for (;;) {
    const tree_node* n = cx.view(at);
    visited += std::uint64_t{1} << 32;
    if (n->key == key) return visited + 1;
    const ferry::ptr<tree_node> child = key < n->key ? n->left : n->right;
    if (child.is_null()) return visited;
    const ferry::ref<tree_node> next = cx.resolve(at, child);
    if (!(next.id == at.id)) return cx.forward(&bst_find, next, key, visited);
    at = next;
  }
}

std::uint64_t tree_sum(ferry::context& cx, ferry::ref<tree_node> at) {
  const tree_node* n = cx.view(at);
  std::uint64_t sum = n->key;
  for (const ferry::ptr<tree_node> child : {n->left, n->right}) {
    if (child.is_null()) continue;
    const ferry::ref<tree_node> c = cx.resolve(at, child);
    sum += c.id == at.id ? tree_sum(cx, c) : cx.invoke(&tree_sum, c);
  }
  return sum;
}

std::uint64_t resolve_bits(ferry::context& cx, ferry::ref<std::uint64_t> holder, std::uint64_t bits,
                           std::uint64_t expect_hi, std::uint64_t expect_lo) {
  const ferry::ref<std::uint64_t> r = cx.resolve(holder, ferry::ptr<std::uint64_t>::from_bits(bits));
  return r.id.hi == expect_hi && r.id.lo == expect_lo ? 1 : 0;
}

std::uint64_t sum_fetched(ferry::context& cx, ferry::ref<std::uint64_t> cell, ferry::ref<std::uint64_t> remote,
                          std::uint64_t count) {
  const std::uint64_t* words = cx.fetch(remote, count);
  std::uint64_t sum = *cx.local(cell);
  for (std::uint64_t i = 0; i < count; ++i) sum += words[i];
  return sum;
}

std::uint8_t fetch_byte(ferry::context& cx, ferry::ref<std::uint64_t> cell, ferry::ref<std::uint64_t> remote,
                        std::uint64_t offset) {
  (void)cx.local(cell);  // runs where the cell is
  return static_cast<std::uint8_t>(*cx.fetch(remote, offset, 1));
}

std::uint32_t move_from_code(ferry::context& cx, ferry::ref<std::uint64_t> cell, ferry::ref<std::uint64_t> moved,
                             std::uint32_t to) {
  (void)cx.local(cell);
  cx.migrate(moved, to);
  return cx.node();
}

std::uint64_t read_where(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  return (std::uint64_t{cx.node()} << 32) | (*cx.local(cell) & 0xffffffffu);
}

std::uint64_t bump(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  return __atomic_add_fetch(cx.local(cell), 1, __ATOMIC_SEQ_CST);
}

}  // namespace rt_test
