#include "kernels.hpp"

void bench_link(ferry::context& cx, ferry::ref<bench_list_node> from, ferry::ref<bench_list_node> to) {
  const ferry::ptr<bench_list_node> p = to.is_nil() ? ferry::ptr<bench_list_node>{} : cx.make_ptr(from, to);
  cx.local(from)->next = p;
}

std::uint64_t bench_list_sum(ferry::context& cx, ferry::ref<bench_list_node> at, std::uint64_t acc) {
  for (;;) {
    const bench_list_node* n = cx.view(at);
    acc += n->value;
    if (n->next.is_null()) return acc;
    const auto next = cx.resolve(at, n->next);
    if (!(next.id == at.id)) return cx.forward(&bench_list_sum, next, acc);
    at = next;
  }
}

bench_step bench_list_step(ferry::context& cx, ferry::ref<bench_list_node> at) {
  const bench_list_node* n = cx.view(at);
  bench_step s;
  s.value = n->value;
  if (!n->next.is_null()) s.next = cx.resolve(at, n->next);
  return s;
}

std::uint64_t bench_read(ferry::context& cx, ferry::ref<std::uint64_t> cell) { return *cx.view(cell); }
