#include "ifunc/service.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/thread_reused.hpp"
#include "exec/call_context.hpp"
#include "exec/dispatch.hpp"
#include "ifunc/message.hpp"

namespace ferry::ifunc {
namespace {

std::atomic<service*> the_process_service{nullptr};

// What ferry_ifunc_here() answers on the thread that runs a NAME_main.
struct running {
  context* cx = nullptr;
  const entry* fn = nullptr;
};
thread_local running here;

struct main_call {
  const entry* fn;
  void* payload;
  std::size_t payload_size;
  void* target_args;
};

// Enters NAME_main from exec::run_mobile (its native-entry shape).
std::int32_t enter_main(const void* call, ferry_context*, const void*, void*) {
  const auto* c = static_cast<const main_call*>(call);
  c->fn->main(c->payload, c->payload_size, c->target_args);
  return 0;
}

}  // namespace

service* process_service() { return the_process_service.load(std::memory_order_acquire); }
void set_process_service(service* s) { the_process_service.store(s, std::memory_order_release); }

std::pair<context*, const entry*> running_here() { return {here.cx, here.fn}; }

status run_contained(context& cx, const entry& fn, void* payload, std::size_t payload_size, void* target_args,
                     std::uint64_t fuel, session::member* member) {
  exec::call_context call;
  if (fuel != 0) call.fuel = static_cast<std::int64_t>(std::min<std::uint64_t>(fuel, INT64_MAX));
  if (member) exec::keep_beating(call, *member);
  const main_call args{&fn, payload, payload_size, target_args};
  const running outer = here;
  here = {&cx, &fn};
  const std::int32_t rc = exec::run_mobile(call, &enter_main, &args, nullptr, nullptr);
  here = outer;
  if (rc == 0) return {};
  const status& why = call.failure;
  return make_error(why.code() == errc::ok ? static_cast<errc>(rc) : why.code(),
                    fmt::format("{}_main: {}", fn.name, why.message()));
}

service::service(session::member& member, std::uint32_t nodes, std::optional<node_side> node,
                 std::shared_ptr<detail::driver_link> link)
    : member_(member), nodes_(nodes), node_(std::move(node)), link_(std::move(link)) {
  // A node that takes ifunc messages starts their engine with itself: its
  // warm-up took 8-11 ms of the first message's time otherwise. A failure
  // here shows again, typed, in the first registration.
  if (node_ && node_->refuse.ok() && node_->engine_at_start)
    prepared_engine_ = registry::instance().prepare(member_linking()).ok();
}

service::~service() {
  if (process_service() == this) set_process_service(nullptr);
  {
    std::lock_guard lock(mu_);
    for (auto& [key, cx] : visiting_) registry::instance().remove_scope(cx.get());
  }
  if (prepared_engine_) registry::instance().release(member_linking());
}

std::unique_ptr<context> service::open(std::string name) {
  auto cx = std::make_unique<context>();
  cx->owner = this;
  cx->origin = member_.self();
  cx->name = std::move(name);
  std::lock_guard lock(mu_);
  cx->id = next_id_++;
  mine_[cx->id] = cx.get();
  return cx;
}

void service::close(context& cx) {
  {
    std::lock_guard lock(mu_);
    mine_.erase(cx.id);
  }
  registry::instance().remove_scope(&cx);
  if (!cx.sent.load(std::memory_order_relaxed)) return;
  // Every node may hold its code (NAME_main sends it on from node to node).
  wire::ifunc_body b;
  b.origin = cx.origin;
  b.context = cx.id;
  b.flags = wire::kIfuncClose;
  for (wire::node_index n = 0; n < nodes_; ++n)
    if (n != member_.self()) (void)member_.send(n, {wire::frame_type::ifunc, member_.self(), 0, b});
}

std::size_t service::contexts() const {
  std::lock_guard lock(mu_);
  return visiting_.size();
}

void service::drop(wire::node_index origin, std::uint64_t id) {
  std::shared_ptr<context> cx;
  {
    std::lock_guard lock(mu_);
    auto it = visiting_.find({origin, id});
    if (it == visiting_.end()) return;
    cx = std::move(it->second);
    visiting_.erase(it);
  }
  // A NAME_main of it still running keeps its code (and cx) until it returns.
  registry::instance().remove_scope(cx.get());
}

status service::send(context& cx, wire::node_index to, std::span<const std::uint8_t> image, const ferry_ref& target,
                     std::uint8_t flags) {
  // One frame per thread, reused: its message keeps its capacity, so a
  // warm send allocates nothing. A send made while this thread's frame is
  // in use (work member::send drains first may run a NAME_main that sends)
  // takes a frame of its own.
  core::thread_reused<wire::frame, struct ifunc_send_frame> frame({wire::frame_type::ifunc, 0, 0, wire::ifunc_body{}});
  auto& f = *frame;
  auto& b = std::get<wire::ifunc_body>(f.body);
  b.origin = cx.origin;
  b.context = cx.id;
  b.flags = flags;
  b.target.id = object_id{target.id_hi, target.id_lo};
  b.target.offset = target.offset;
  b.message.assign(image.begin(), image.end());
  f.source = member_.self();
  cx.sent.store(true, std::memory_order_relaxed);
  auto sent = member_.send(to, f);
  if (b.message.capacity() > (std::size_t{1} << 20)) std::vector<std::uint8_t>().swap(b.message);  // a big one
  return sent;
}

std::optional<context::arrival> service::take(context& cx) {
  if (cx.waiting.load(std::memory_order_acquire) == 0) return std::nullopt;
  std::lock_guard lock(cx.mu);
  if (cx.inbox.empty()) return std::nullopt;
  auto a = std::move(cx.inbox.front());
  cx.inbox.pop_front();
  cx.waiting.store(cx.inbox.size(), std::memory_order_relaxed);
  return a;
}

std::optional<context::arrival> service::next(context& cx) {
  if (auto a = take(cx)) return a;
  // Nothing yet: progress once (unless another thread drives), look again.
  if (!member_.driving()) (void)member_.drive_once();
  return take(cx);
}

std::optional<context::arrival> service::wait(context& cx, std::chrono::steady_clock::time_point deadline) {
  if (!link_) return next(cx);
  detail::drive_until(
      *link_, deadline, [&] { return cx.waiting.load(std::memory_order_acquire) != 0; },
      [&](std::chrono::microseconds d) {
        std::unique_lock lock(cx.mu);
        cx.arrived.wait_for(lock, d, [&] { return !cx.inbox.empty(); });
      });
  return take(cx);
}

void service::on_frame(wire::frame&& f) {
  auto& b = std::get<wire::ifunc_body>(f.body);
  if (!node_) {
    // A client: messages and failure reports for one of its contexts.
    if (b.origin != member_.self()) return;
    std::lock_guard lock(mu_);
    auto it = mine_.find(b.context);
    if (it == mine_.end()) return;  // a context closed meanwhile
    std::lock_guard inbox(it->second->mu);
    it->second->inbox.push_back({std::move(b.message),
                                 b.failure == errc::ok
                                     ? status{}
                                     : make_error(b.failure, fmt::format("node {}: {}", f.source, b.failure_message))});
    it->second->waiting.store(it->second->inbox.size(), std::memory_order_release);
    it->second->arrived.notify_all();
    return;
  }
  if (b.failure != errc::ok || b.origin == wire::kNoNode) return;  // reports go to origins, not to nodes
  if (b.flags & wire::kIfuncClose) {
    // Only the origin closes its contexts. Unloading waits for the JIT's
    // lock (a compile may hold it): not on the driving thread.
    if (f.source == b.origin)
      node_->policy->blocking([this, origin = b.origin, id = b.context] { drop(origin, id); });
    return;
  }
  auto cx = node_context(b.origin, b.context);
  if (!node_->refuse) return report(*cx, node_->refuse);
  // Registering shipped code compiles it: never on the driving thread. A
  // resident ifunc runs where the policy's verdict from its last run says.
  static const exec::run_verdict not_resident;
  auto fn = (b.flags & wire::kIfuncInstall) ? nullptr : resident(*cx, b.message);
  node_->policy->run_code(fn ? fn->verdict : not_resident, fn != nullptr,
                          [this, cx = std::move(cx), b = std::move(b), fn]() mutable {
                            run_on_node(std::move(cx), std::move(b), std::move(fn));
                          });
}

std::shared_ptr<entry> service::resident(const context& cx, std::span<const std::uint8_t> message) {
  if (message.size() < wire::kIfuncHeaderSize) return nullptr;
  const auto h = wire::decode_ifunc_header(message.first<wire::kIfuncHeaderSize>());
  return h ? registry::instance().find(&cx, h->key) : nullptr;
}

std::shared_ptr<context> service::node_context(wire::node_index origin, std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto& slot = visiting_[{origin, id}];
  if (!slot) {
    slot = std::make_shared<context>();
    slot->owner = this;
    slot->origin = origin;
    slot->id = id;
    slot->name = fmt::format("context {} of member {}", id, origin);
  }
  return slot;
}

void service::run_on_node(std::shared_ptr<context> cx, wire::ifunc_body b, std::shared_ptr<entry> fn) {
  // The image, 8-aligned as take_message wants it (a copy only when the
  // frame's bytes are not).
  std::vector<std::uint64_t> copy;
  void* image = b.message.data();
  if (reinterpret_cast<std::uintptr_t>(image) % 8 != 0) {
    copy.resize((b.message.size() + 7) / 8);
    std::memcpy(copy.data(), b.message.data(), b.message.size());
    image = copy.data();
  }
  auto taken = take_message(registry::instance(), cx.get(), member_linking(), image, b.message.size(), std::move(fn));
  if (!taken) return report(*cx, taken.error());
  if (!*taken) return report(*cx, make_error(errc::bad_format, "ifunc frame without a whole ifunc message"));
  if (b.flags & wire::kIfuncInstall) return;
  const auto& m = **taken;
  void* target_args = nullptr;
  store::pinned_bytes pinned;
  if (!b.target.id.is_nil()) {
    auto p = node_->objects->pin(b.target.id);
    if (!p) {
      return report(*cx, p.code() == errc::not_found
                             ? make_error(errc::not_local, fmt::format("{}: target object {} is not on node {}",
                                                                       m.fn->name, b.target.id.to_string(), self()))
                             : p.error());
    }
    if (b.target.offset > p->bytes.size())
      return report(*cx, make_error(errc::out_of_bounds, fmt::format("{}: target offset {} past object {} ({} bytes)",
                                                                     m.fn->name, b.target.offset,
                                                                     b.target.id.to_string(), p->bytes.size())));
    pinned = std::move(*p);
    target_args = pinned.bytes.data() + b.target.offset;
  }
  const auto started = std::chrono::steady_clock::now();
  const status ran = run_contained(*cx, *m.fn, m.payload, m.payload_size, target_args, node_->fuel_per_call, &member_);
  // It may have written to its target: sealing a persistent one is store I/O.
  const bool sealed = !b.target.id.is_nil() && node_->objects->persistent();
  node_->policy->ran(m.fn->verdict, /*may_block=*/false, {std::chrono::steady_clock::now() - started, sealed, !ran.ok()});
  if (sealed) (void)node_->objects->flush(b.target.id);
  if (!ran) report(*cx, ran);
}

void service::report(const context& cx, const status& failure) {
  wire::ifunc_body b;
  b.origin = cx.origin;
  b.context = cx.id;
  b.failure = failure.code();
  b.failure_message = failure.message();
  (void)member_.send(cx.origin, {wire::frame_type::ifunc, member_.self(), 0, std::move(b)});
}

}  // namespace ferry::ifunc
