// Mobile functions of the mobility tests: linked structures walked across
// objects and nodes (ferry::ptr fields resolved through their holder's FOT
// with cx.resolve, links made where the holder lives with cx.make_ptr), data
// pulled with cx.fetch, and a counter that moving objects must not disturb.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace rt_test {

/// A list element; several live in one object, the list runs through
/// objects on several nodes.
struct list_node {
  std::uint64_t value = 0;
  ferry::ptr<list_node> next;
};

/// A binary tree node; subtrees may live in other objects.
struct tree_node {
  std::uint64_t key = 0;
  ferry::ptr<tree_node> left, right;
};

/// Set `from`'s next pointer to `to` (null when `to` is nil); the call runs
/// where `from` lives. Returns the ptr's bits.
[[ferry::mobile]] std::uint64_t link_list(ferry::context& cx, ferry::ref<list_node> from, ferry::ref<list_node> to);
/// Set child `side` (0 left, 1 right) of `parent` to `child`.
[[ferry::mobile]] std::uint64_t link_tree(ferry::context& cx, ferry::ref<tree_node> parent, ferry::ref<tree_node> child,
                                          std::uint32_t side);

/// acc + the values from `at` to the end of the list: walks the elements
/// held here, forwards itself to the object that holds the next one.
[[ferry::mobile]] std::uint64_t list_sum(ferry::context& cx, ferry::ref<list_node> at, std::uint64_t acc);
/// Search a binary search tree for `key`, forwarding to the node that holds
/// the next subtree; returns the number of tree nodes visited * 2^32 + 1 if
/// found, or the number visited * 2^32 if not.
[[ferry::mobile]] std::uint64_t bst_find(ferry::context& cx, ferry::ref<tree_node> at, std::uint64_t key,
                                         std::uint64_t visited);
/// Sum of every key in the subtree at `at`: local subtrees walked in place,
/// remote ones by nested calls where they live.
[[ferry::mobile]] std::uint64_t tree_sum(ferry::context& cx, ferry::ref<tree_node> at);

/// Resolve ptr `bits` held in `holder`; the ref's offset (its id checked by
/// the caller through `expect_hi/lo`: returns 1 if it matches, else 0).
[[ferry::mobile]] std::uint64_t resolve_bits(ferry::context& cx, ferry::ref<std::uint64_t> holder, std::uint64_t bits,
                                             std::uint64_t expect_hi, std::uint64_t expect_lo);

/// *cell + the sum of `count` words at `remote`, pulled with cx.fetch.
[[ferry::mobile]] std::uint64_t sum_fetched(ferry::context& cx, ferry::ref<std::uint64_t> cell,
                                            ferry::ref<std::uint64_t> remote, std::uint64_t count);
/// The byte at `offset` past `remote`, pulled with cx.fetch(ref, offset, 1),
/// run where `cell` lives.
[[ferry::mobile]] std::uint8_t fetch_byte(ferry::context& cx, ferry::ref<std::uint64_t> cell,
                                          ferry::ref<std::uint64_t> remote, std::uint64_t offset);

/// Move `moved` to node `to` from mobile code (cx.migrate), running where
/// `cell` lives; returns the node it ran on.
[[ferry::mobile]] std::uint32_t move_from_code(ferry::context& cx, ferry::ref<std::uint64_t> cell,
                                               ferry::ref<std::uint64_t> moved, std::uint32_t to);
/// *cell, and the node it was read on (in the high 32 bits).
[[ferry::mobile]] std::uint64_t read_where(ferry::context& cx, ferry::ref<std::uint64_t> cell);

/// Atomically add 1 to *cell and return the new value (exactly-once checks:
/// every call of a stream must see a value no other call saw).
[[ferry::mobile]] std::uint64_t bump(ferry::context& cx, ferry::ref<std::uint64_t> cell);

}  // namespace rt_test
