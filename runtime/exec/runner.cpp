#include "exec/runner.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace ferry::exec {

using wire::frame;
using wire::frame_type;

namespace {
object_id id_of(const ferry_ref& r) { return {r.id_hi, r.id_lo}; }

// Does [r.offset, +size) lie in an object of `object_size` bytes? If not,
// false with out_of_bounds in cx.failure. Both checks without overflow.
bool in_object(call_context& cx, const ferry_ref& r, std::uint64_t size, std::uint64_t object_size,
               const char* what) {
  if (r.offset <= object_size && object_size - r.offset >= size) return true;
  cx.failure = make_error(errc::out_of_bounds, fmt::format("{}: [{}, +{}) outside object {} ({} bytes)", what,
                                                           r.offset, size, id_of(r).to_string(), object_size));
  return false;
}

// Time left before `call`'s deadline (a minute for a call without one).
std::chrono::milliseconds time_left(const wire::invoke_body& call) {
  if (call.deadline_us == 0) return std::chrono::minutes(1);
  const std::uint64_t now = wire::deadline_clock_us();
  return std::chrono::milliseconds(call.deadline_us > now ? (call.deadline_us - now) / 1000 : 0);
}
}  // namespace

void runner::reply_error(wire::node_index to, std::uint64_t call, const status& s) const {
  (void)member_.send(to, {frame_type::error, who_.index, call, wire::error_body{s.code(), s.message()}});
}

void keep_beating(call_context& cx, session::member& member) {
  if (!member.driving()) return;
  cx.while_running = [](void* m) { static_cast<session::member*>(m)->beat_while_busy(); };
  cx.while_running_arg = &member;
}

void runner::run(code::code_entry* entry, frame&& f) {
  const auto& call = std::get<wire::invoke_body>(f.body);
  const auto& co = entry->code;
  if (auto s = signature_matches(*entry, call); !s.ok()) return reply_error(call.origin, call.origin_call, s);
  if (call.args.size() != co.args_size)
    return reply_error(call.origin, call.origin_call,
                       make_error(errc::invalid_argument, fmt::format("{} takes {} bytes of arguments, got {}", co.name,
                                                                      co.args_size, call.args.size())));
  if (call.flags & wire::kInvokePull) pulled_calls_.fetch_add(1, std::memory_order_relaxed);
  call_context cx;
  cx.host = this;
  cx.code = entry;
  cx.call = &call;
  cx.forward = std::move(spare_continuation());  // its buffers' capacity, for cx.forward
  if (fuel_per_call_ != 0 && fuel_per_call_ < static_cast<std::uint64_t>(INT64_MAX))
    cx.fuel = static_cast<std::int64_t>(fuel_per_call_);
  keep_beating(cx, member_);
  // The reply frame is one per thread, reused: the result is written
  // straight into its body, which keeps its capacity.
  thread_local frame reply{frame_type::reply, 0, 0, wire::reply_body{}};
  auto& result = std::get<wire::reply_body>(reply.body).result;
  result.resize(co.result_size);
  const jit_function& fn = entry->fn;  // set once, before the first call, and never replaced (code_entry)
  const auto started = std::chrono::steady_clock::now();
  const std::int32_t rc = run_mobile(cx, fn, call.args.data(), call.args.size(), result.data(), result.size());
  const auto took = std::chrono::steady_clock::now() - started;
  fn.ran_for(took);  // long runs make code hot as many calls do (jit_config::hot_run_time)
  policy_.ran(*entry, {took, !cx.touched.empty(), rc != 0});
  // Seal what the call may have written, before anyone hears of its end
  // (reply, error or forward): an answered call's writes are durable.
  const status sealed = seal(cx);
  if (rc != 0) {
    const status s = cx.failure.ok() ? make_error(static_cast<errc>(rc), fmt::format("{} failed", co.name)) : cx.failure;
    return reply_error(call.origin, call.origin_call, s);
  }
  if (!sealed.ok()) return reply_error(call.origin, call.origin_call, sealed);
  if (cx.forwarded) return hand_on(std::move(f), cx);
  spare_continuation() = std::move(cx.forward);
  reply.source = who_.index;
  reply.call = call.origin_call;
  (void)member_.send(call.origin, reply);
}

status runner::signature_matches(const code::code_entry& code, const wire::invoke_body& call) {
  if (call.signature_hash == 0 || call.signature_hash == code.code.signature_hash) return {};
  return make_error(errc::invalid_argument,
                    fmt::format("caller's signature of {} does not match the code object", code.code.name));
}

void runner::loaded(const code::code_entry& code, const frame& f) const {
  const auto& call = std::get<wire::invoke_body>(f.body);
  if (auto s = signature_matches(code, call); !s.ok()) return reply_error(call.origin, call.origin_call, s);
  if (!(call.flags & wire::kInvokeOptimize))
    return (void)member_.send(call.origin, {frame_type::reply, who_.index, call.origin_call, wire::reply_body{}});
  // Answered from the network thread once the JIT worker has swapped the
  // optimized code in (or failed to).
  code.fn.optimize([this, origin = call.origin, id = call.origin_call](status s) {
    member_.post([this, origin, id, s = std::move(s)] {
      if (!s.ok()) return reply_error(origin, id, s);
      (void)member_.send(origin, {frame_type::reply, who_.index, id, wire::reply_body{}});
    });
  });
}

wire::invoke_body& runner::spare_continuation() {
  thread_local wire::invoke_body spare;
  return spare;
}

void runner::hand_on(frame&& f, call_context& cx) {
  // The continuation takes the call's place in its frame; the call's body
  // becomes the spare whose buffers the next continuation reuses.
  auto& body = std::get<wire::invoke_body>(f.body);
  std::swap(body, cx.forward);
  spare_continuation() = std::move(cx.forward);
  f.source = who_.index;
  f.call = 0;
  // On the driving thread it is routed at once (most often: sent to the
  // next node), unless this very call was routed so — a continuation that
  // runs here again goes through the queue, so a chain of local forwards
  // cannot grow the stack. Elsewhere, or then, the driving thread routes it.
  thread_local bool routing = false;
  if (!routing && member_.driving()) {
    routing = true;
    route_(std::move(f));
    routing = false;
    return;
  }
  member_.post([this, f = std::move(f)]() mutable { route_(std::move(f)); });
}

status runner::seal(const call_context& cx) {
  status first;
  // Each object once, over the ranges handed out of it.
  auto ranges = cx.touched;
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
    return a.id != b.id ? a.id < b.id : a.offset < b.offset;
  });
  std::vector<store::data_range> written;
  for (std::size_t i = 0; i < ranges.size();) {
    const object_id id = ranges[i].id;
    written.clear();
    for (; i < ranges.size() && ranges[i].id == id; ++i) written.push_back({ranges[i].offset, ranges[i].length});
    auto s = store_.flush(id, written);
    // Removed, or resized smaller than the ranges, while the call ran: its
    // writes went to the image it pinned, no longer the object's.
    if (!s.ok() && s.code() != errc::not_found && s.code() != errc::out_of_bounds && first.ok())
      first = make_error(s.code(), fmt::format("sealing object {} after the call: {}", id.to_string(), s.error().message()));
  }
  return first;
}

bool runner::local(call_context& cx, const ferry_ref& r, std::uint64_t size, access how, void** out) {
  const char* what = how == access::read ? "cx.view" : "cx.local";
  const object_id id = id_of(r);
  const auto& last = cx.last_whole;
  if (how == access::read && last.held && last.id == id) {  // pinned and admitted whole already
    if (!in_object(cx, r, size, last.bytes.size(), what)) return false;
    *out = const_cast<std::byte*>(last.bytes.data() + r.offset);
    return true;
  }
  // Writable bytes in place, or (cx.view) bytes a write through faults on
  // in a persistent store; both stay mapped until the call ends.
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> keep;
  auto take = [&](auto pinned) -> status {
    if (!pinned) return pinned.error();
    bytes = pinned->bytes;
    keep = std::move(pinned->keep);
    return {};
  };
  const status missing = how == access::read ? take(store_.pin_read_only(id)) : take(store_.pin(id));
  if (!missing.ok() && missing.code() == errc::not_found && (cx.call->flags & wire::kInvokePull)) {
    // Placement sent the call here on pulled data: a private copy of the range.
    std::uint8_t* copy = nullptr;
    if (!pull(cx, r, size, what, &copy)) return false;
    *out = copy;
    return true;
  }
  if (!missing.ok()) {
    cx.failure = missing.code() == errc::not_found
                     ? make_error(errc::not_local, fmt::format("object {} is not on node {}", id.to_string(), who_.index))
                     : missing;
    return false;
  }
  if (!in_object(cx, r, size, bytes.size(), what)) return false;
  cx.pins.add(std::move(keep));  // mapped until the call ends
  // Bounds-checked code may touch the whole object, not just this range
  // (with its ref it could ask for any range of it anyway), but in a
  // persistent store write just what cx.local handed out: that is what the
  // call's end seals, and a write past it fails the call with memory_fault
  // instead of leaving the object's checksum wrong. A call that asked for
  // many ranges is handed the whole object from then on, sealed whole.
  if (persistent_ && how == access::write) {
    const bool whole = cx.touched.size() >= call_context::kMaxWrittenRanges;
    const std::uint64_t from = whole ? 0 : r.offset, length = whole ? bytes.size() : size;
    cx.wrote(id, from, length);
    cx.writable.add(bytes.data() + from, length);
  } else {
    cx.admit(bytes.data(), bytes.size(), how);
    cx.last_whole = {true, id, bytes};
  }
  *out = const_cast<std::byte*>(bytes.data() + r.offset);
  return true;
}

bool runner::read(call_context& cx, const ferry_ref& r, void* out, std::uint64_t size) {
  const object_id id = id_of(r);
  // Not read ahead while this call may write the object through cx.local:
  // it must read back what it wrote.
  const bool writes = std::any_of(cx.touched.begin(), cx.touched.end(), [&](const auto& w) { return w.id == id; });
  auto s = store_.read_at_rest(id, r.offset, {static_cast<std::byte*>(out), size}, !writes);
  if (s) return true;
  if (s.code() == errc::not_found && (cx.call->flags & wire::kInvokePull)) {  // sent here on pulled data
    std::uint8_t* copy = nullptr;
    if (!pull(cx, r, size, "cx.read", &copy)) return false;
    if (size) std::memcpy(out, copy, size);
    return true;
  }
  cx.failure = s.code() == errc::not_found
                   ? make_error(errc::not_local, fmt::format("object {} is not on node {}", id.to_string(), who_.index))
                   : s.error();
  return false;
}

bool runner::continuation(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
                          std::uint64_t size, const char* what, wire::invoke_body& next) {
  if (!cx.code->fn.symbol_at(fn, next.symbol)) {
    cx.failure =
        make_error(errc::unknown_code, fmt::format("{}: the function is not a mobile function this code references", what));
    return false;
  }
  const bool self = next.symbol == cx.code->code.symbol;
  next.code = self ? cx.code->id : object_id{};
  next.signature_hash = self ? cx.code->code.signature_hash : 0;
  next.code_holder = self ? who_.index : cx.call->code_holder;
  next.deadline_us = cx.call->deadline_us;
  next.target = ref<void>{id_of(target), target.offset};
  next.args.assign(static_cast<const std::uint8_t*>(args), static_cast<const std::uint8_t*>(args) + size);
  return true;
}

bool runner::forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size) {
  wire::invoke_body& next = cx.forward;  // a spare body, written over field by field
  if (!continuation(cx, fn, target, args, size, "cx.forward", next)) return false;
  next.origin = cx.call->origin;
  next.origin_call = cx.call->origin_call;
  next.hops = static_cast<std::uint16_t>(cx.call->hops + 1);
  next.flags = 0;
  next.code_blob.clear();
  cx.forwarded = true;
  return true;
}

bool runner::invoke(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
                    void* out, std::uint64_t out_size) {
  if (member_.driving()) {  // cannot happen: code naming ferry_invoke never runs in place; never deadlock
    cx.failure = make_error(errc::unsupported, "cx.invoke on the network thread");
    return false;
  }
  wire::invoke_body b;
  if (!continuation(cx, fn, target, args, size, "cx.invoke", b)) return false;
  const std::string symbol = b.symbol;
  // A callee other than this code is not known here: it may travel.
  const bool travels = b.code != cx.code->id || cx.code->may_forward;
  b.origin = who_.index;
  std::vector<std::uint8_t> answer;
  // Routed by the node (a nested call may run here): to = kNoNode.
  if (!await_answer(cx, {wire::kNoNode, id_of(target), wire::kNoNode, travels}, wire::kNoNode,
                    frame{frame_type::invoke, who_.index, 0, std::move(b)}, fmt::format("nested call of {}", symbol),
                    answer))
    return false;
  if (answer.size() != out_size) {
    cx.failure = make_error(errc::invalid_argument, fmt::format("nested call of {} returned {} bytes, caller expects {}",
                                                                symbol, answer.size(), out_size));
    return false;
  }
  if (out_size) std::memcpy(out, answer.data(), out_size);
  return true;
}

bool runner::await_answer(call_context& cx, calls::depends_on deps, wire::node_index to, frame&& f,
                          const std::string& what, std::vector<std::uint8_t>& answer) {
  // The answer arrives on the driving thread; this executor waits for it.
  auto w = std::make_shared<calls::answer_waiter>();
  const std::uint64_t id = calls_.add(deps, calls::completion_for(w));
  f.call = id;
  if (to == wire::kNoNode) {  // an invoke the node routes (it may run here)
    std::get<wire::invoke_body>(f.body).origin_call = id;
    member_.post([this, f = std::move(f)]() mutable { route_(std::move(f)); });
  } else if (auto s = member_.send(to, f); !s.ok()) {
    (void)calls_.complete(id, {}, std::move(s));
  }

  const auto deadline = cx.call->deadline_us
                            ? std::chrono::system_clock::time_point(std::chrono::microseconds(cx.call->deadline_us))
                            : std::chrono::system_clock::now() + std::chrono::seconds(60);
  bool answered = false;
  {
    const dispatch_policy::waiting holds_no_core(policy_);
    answered = w->wait_until(deadline);
  }
  if (!answered) {
    calls_.cancel(id);
    cx.failure = make_error(errc::timeout, fmt::format("{} passed its deadline", what));
    return false;
  }
  if (!w->s.ok()) {
    cx.failure = w->s;
    return false;
  }
  answer = std::move(w->bytes);
  return true;
}

bool runner::here(call_context& cx, const object_id& id, const char* what) {
  if (store_.holds(id)) return true;
  cx.failure = make_error(errc::not_local, fmt::format("{}: object {} is not on node {}", what, id.to_string(), who_.index));
  return false;
}

bool runner::resolve(call_context& cx, const ferry_ref& holder, std::uint64_t ptr_bits, ferry_ref* out) {
  const object_id id = id_of(holder);
  if (!here(cx, id, "cx.resolve")) return false;
  auto r = store_.resolve(id, ptr<void>::from_bits(ptr_bits));
  if (!r) {
    cx.failure = r.error();
    return false;
  }
  *out = {r->id.hi, r->id.lo, r->offset};
  return true;
}

bool runner::make_ptr(call_context& cx, const ferry_ref& holder, const ferry_ref& target, std::uint64_t* out) {
  const object_id id = id_of(holder);
  if (!here(cx, id, "cx.make_ptr")) return false;
  auto p = store_.make_ptr(id, ref<void>{id_of(target), target.offset});
  if (!p) {
    cx.failure = p.error();
    return false;
  }
  *out = p->bits();
  return true;
}

bool runner::migrate(call_context& cx, const ferry_ref& r, std::uint32_t node) {
  const object_id id = id_of(r);
  if (id == cx.call->target.id) {  // its move would wait for this very call to end
    cx.failure = make_error(errc::invalid_argument,
                            fmt::format("cx.migrate of object {}, which this call is routed by: the move waits for the "
                                        "call to end (return, or forward, first)",
                                        id.to_string()));
    return false;
  }
  if (member_.driving()) {  // cannot happen: code naming ferry_migrate never runs in place
    cx.failure = make_error(errc::unsupported, "cx.migrate on the network thread");
    return false;
  }
  const auto to = store_.holds(id) ? std::optional<wire::node_index>(who_.index)
                                   : discovery_.next_hop_wait(id, time_left(*cx.call));
  if (!to) {
    cx.failure = make_error(errc::not_found, fmt::format("cx.migrate: no node holds object {}", id.to_string()));
    return false;
  }
  std::vector<std::uint8_t> answer;
  return await_answer(cx, {*to, id, wire::kNoNode, false}, *to,
                      frame{frame_type::object_migrate, who_.index, 0, wire::dir_register_body{id, node}},
                      fmt::format("cx.migrate of object {} to node {}", id.to_string(), node), answer);
}

bool runner::fetch(call_context& cx, const ferry_ref& r, std::uint64_t size, const void** out) {
  std::uint8_t* copy = nullptr;
  if (!pull(cx, r, size, "cx.fetch", &copy)) return false;
  *out = copy;
  return true;
}

bool runner::pull(call_context& cx, const ferry_ref& r, std::uint64_t size, const char* what, std::uint8_t** out) {
  const object_id id = id_of(r);
  if (size > wire::kMaxObjectGet) {
    cx.failure = make_error(errc::too_large, fmt::format("{} of {} bytes: at most {} at once", what, size,
                                                         wire::kMaxObjectGet));
    return false;
  }
  // The copy counts against the node's memory limit until the call ends: a
  // call fetching more than the node may hold fails with out_of_memory
  // instead of the kernel killing the node (a DPU under its cgroup limit).
  auto reserved = store_.reserve(size);
  if (!reserved) {
    cx.failure = make_error(errc::out_of_memory, fmt::format("cx.fetch on node {}: {}", who_.index,
                                                             reserved.error().message()));
    return false;
  }
  std::vector<std::uint8_t> copy;
  if (store_.holds(id)) {
    copy.resize(size);
    if (auto s = store_.read(id, r.offset, std::as_writable_bytes(std::span(copy))); !s) {
      cx.failure = s.error();
      return false;
    }
  } else {
    if (member_.driving()) {  // cannot happen: code naming ferry_fetch, and pulled calls, never run in place
      cx.failure = make_error(errc::unsupported, fmt::format("{} of a remote object on the network thread", what));
      return false;
    }
    const auto to = discovery_.next_hop_wait(id, time_left(*cx.call));
    if (!to) {
      cx.failure = make_error(errc::not_found, fmt::format("{}: no node holds object {}", what, id.to_string()));
      return false;
    }
    if (!await_answer(cx, {*to, id, wire::kNoNode, false}, *to,
                      frame{frame_type::object_get, who_.index, 0, wire::object_get_body{{id, r.offset}, size}},
                      fmt::format("{} of object {}", what, id.to_string()), copy))
      return false;
    if (copy.size() != size) {
      cx.failure = make_error(errc::bad_format, fmt::format("{} asked for {} bytes, got {}", what, size, copy.size()));
      return false;
    }
    pulled_bytes_.fetch_add(size, std::memory_order_relaxed);
  }
  cx.fetched.push_back({std::move(copy), std::move(*reserved)});
  *out = cx.fetched.back().bytes.data();
  return true;
}

}  // namespace ferry::exec
