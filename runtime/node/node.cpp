#include "node.hpp"

#include <cstring>

#include <fmt/format.h>

namespace ferry::node {

using wire::frame;
using wire::frame_type;

namespace {

std::map<std::string, void*> runtime_api_symbols() {
  return {{"ferry_local", reinterpret_cast<void*>(&ferry_local)},
          {"ferry_forward", reinterpret_cast<void*>(&ferry_forward)},
          {"ferry_invoke", reinterpret_cast<void*>(&ferry_invoke)},
          {"ferry_node_id", reinterpret_cast<void*>(&ferry_node_id)},
          {"ferry_node_kind", reinterpret_cast<void*>(&ferry_node_kind)},
          {"ferry_node_triple", reinterpret_cast<void*>(&ferry_node_triple)}};
}

object_id id_of(const ferry_ref& r) { return {r.id_hi, r.id_lo}; }

// Whether a code object's bitcode names ferry_invoke (its symbol table keeps
// the names of what a module calls): only such code can block in a call.
// Conservative: the name appearing anywhere counts.
bool names_ferry_invoke(const code_object& co) {
  constexpr std::string_view name = "ferry_invoke";
  for (const auto& v : co.variants) {
    const std::string_view bits(reinterpret_cast<const char*>(v.bitcode.data()), v.bitcode.size());
    if (bits.find(name) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

result<std::unique_ptr<node>> node::create(node_config config) {
  if (config.nodes == 0 || config.index >= config.nodes)
    return make_error(errc::invalid_argument,
                      fmt::format("node index {} outside a cluster of {} nodes", config.index, config.nodes));
  std::unique_ptr<node> n(new node(std::move(config)));
  if (n->config_.store_dir.empty()) {
    n->store_ = store::open_memory();
  } else {
    FERRY_TRY(n->store_, store::open_directory(n->config_.store_dir));
  }
  auto jc = n->config_.jit;
  for (auto& [name, addr] : runtime_api_symbols()) jc.runtime_symbols.emplace(name, addr);
  FERRY_TRY(n->jit_, jit::create(std::move(jc)));
  n->triple_ = jit_target::host().triple;
  n->config_.member.self = n->config_.index;
  FERRY_TRY(n->member_, cluster::member::create(n->config_.member));
  n->member_->on_frame([raw = n.get()](frame&& f) { raw->on_frame(std::move(f)); });
  n->member_->on_peer_dead([raw = n.get()](node_index who) { raw->on_peer_dead(who); });
  for (unsigned i = 0; i < std::max(1u, n->config_.executors); ++i)
    n->executors_.emplace_back([raw = n.get()] { raw->executor_loop(); });
  n->member_->start();
  return n;
}

node::~node() {
  {
    std::lock_guard lock(exec_mu_);
    exec_stop_ = true;
  }
  exec_cv_.notify_all();
  for (auto& t : executors_) t.join();
  member_.reset();  // stops the progress thread before the state it uses goes
}

result<void> node::join(cluster::bootstrap& bs, std::chrono::milliseconds timeout) {
  if (bs.self() != config_.index || bs.nodes() != config_.nodes)
    return make_error(errc::invalid_argument,
                      fmt::format("node {} of {} joining as member {} of a cluster of {} nodes ({})", config_.index,
                                  config_.nodes, bs.self(), bs.nodes(), bs.describe()));
  FERRY_TRY_STATUS(bs.publish(member_->address()));
  FERRY_TRY(auto addresses, bs.node_addresses(timeout));
  const frame hello{frame_type::hello, config_.index, 0, own_hello()};
  for (node_index i = 0; i < config_.nodes; ++i) {
    if (i == config_.index) continue;
    FERRY_TRY_STATUS(member_->connect(i, addresses[i]));
    FERRY_TRY_STATUS(result<void>(member_->send(i, hello)));
  }
  // Objects a persistent store kept across a restart: their homes forgot us
  // when we said hello (on_frame, hello).
  for (const auto& id : store_->list()) {
    owners_.learn(id, config_.index);
    tell_home(id, config_.index);
  }
  // Clients of an earlier incarnation of this node: they reconnect when they
  // hear from it. Some may be gone; their silence gets them declared dead.
  for (auto& [k, address] : bs.clients())
    if (member_->connect(k, std::move(address))) (void)member_->send(k, hello);
  return {};
}

wire::hello_body node::own_hello() const { return {config_.index, config_.kind, triple_, member_->address()}; }

void node::wait() {
  std::unique_lock lock(stop_mu_);
  stop_cv_.wait(lock, [&] { return stopped_; });
}

void node::stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
}

void node::reply_error(node_index to, std::uint64_t call, status s) {
  (void)member_->send(to, {frame_type::error, config_.index, call, wire::error_body{s.code(), s.message()}});
}

// ---------------------------------------------------------------------------
// Frames (the driving thread)

void node::on_frame(frame&& f) {
  switch (f.type) {
    case frame_type::hello: {
      const auto& h = std::get<wire::hello_body>(f.body);
      const auto change = member_->learn(h.index, h.address);
      if (!change) return;  // bad address: ignore this member
      if (h.index >= config_.nodes) {  // a client: tell it who we are (it waits for every node's hello)
        (void)member_->send(h.index, {frame_type::hello, config_.index, 0, own_hello()});
        return;
      }
      if (*change != cluster::member::change::replaced) return;
      // A node restarted. Pass its hello on to our clients: a bootstrap that
      // keeps no client addresses could not tell it where they are.
      const node_index restarted = h.index;
      f.source = config_.index;
      for (const node_index k : member_->live_members())
        if (k >= config_.nodes) (void)member_->send(k, f);
      // What it owned is gone or re-registered by it (join()); the directory
      // entries it was home of are gone: register ours again.
      owners_.forget_owner(restarted);
      submit([this, restarted] {
        for (const auto& id : store_->list())
          if (directory::home_of(id, config_.nodes) == restarted) tell_home(id, config_.index);
      });
      return;
    }
    case frame_type::invoke: return handle_invoke(std::move(f));
    case frame_type::code_request: return handle_code_request(f);
    case frame_type::code_response: return handle_code_response(std::move(f));
    case frame_type::object_create:
    case frame_type::object_put:
    case frame_type::object_get:
    case frame_type::object_remove:
      // Store I/O (a persistent store fsyncs) never runs on the network thread.
      return submit([this, f = std::move(f)] { handle_object_op(f); });
    case frame_type::dir_register: {
      const auto& d = std::get<wire::dir_register_body>(f.body);
      if (d.owner == wire::kNoNode) owners_.forget(d.id);
      else if (d.owner < config_.nodes) owners_.learn(d.id, d.owner);
      return;
    }
    case frame_type::reply:
    case frame_type::error: {
      std::shared_ptr<nested_wait> w;
      {
        std::lock_guard lock(nested_mu_);
        if (auto it = nested_.find(f.call); it != nested_.end()) w = it->second;
      }
      if (!w) {
        if (f.type == frame_type::error) {
          const auto& e = std::get<wire::error_body>(f.body);
          fail_code_request(f.call, make_error(e.code, e.message));
        }
        return;
      }
      if (f.type == frame_type::error) {
        const auto& e = std::get<wire::error_body>(f.body);
        return w->finish(make_error(e.code, e.message));
      }
      std::lock_guard lock(w->mu);
      if (w->done) return;  // failed already (its first hop was declared dead)
      w->result = std::move(std::get<wire::reply_body>(f.body).result);
      w->done = true;
      w->cv.notify_all();
      return;
    }
    case frame_type::echo:
      (void)member_->send(f.source, {frame_type::echo, config_.index, f.call, std::move(f.body)});
      return;
    case frame_type::shutdown: stop(); return;
    default:
      reply_error(f.source, f.call,
                  make_error(errc::invalid_argument, fmt::format("a node does not accept {} frames", wire::to_string(f.type))));
  }
}

void node::tell_home(const object_id& id, node_index owner) {
  const node_index home = directory::home_of(id, config_.nodes);
  if (home != config_.index)
    (void)member_->send(home, {frame_type::dir_register, config_.index, 0, wire::dir_register_body{id, owner}});
}

void node::nested_wait::finish(status s) {
  std::lock_guard lock(mu);
  if (done) return;
  error = std::move(s);
  done = true;
  cv.notify_all();
}

void node::hint_owner(node_index requester, const object_id& id, node_index next) {
  if (requester != config_.index && owners_.owner(id) == next)
    (void)member_->send(requester, {frame_type::dir_register, config_.index, 0, wire::dir_register_body{id, next}});
}

void node::on_peer_dead(node_index who) {
  // Nested calls sent to the dead member, or on an object it owns, fail now,
  // not at their deadline.
  {
    std::lock_guard lock(nested_mu_);
    for (auto& [call, w] : nested_)
      if (w->sent_to == who || owners_.owner(w->target) == who)
        w->finish(make_error(errc::peer_dead, fmt::format("node {} stopped answering (heartbeat lost) during a nested call", who)));
  }
  // Calls waiting for code from the dead member fail now, not at their deadline.
  std::vector<std::uint64_t> lost;
  for (const auto& [call, req] : code_requests_)
    if (req.holder == who) lost.push_back(call);
  for (auto call : lost)
    fail_code_request(call, make_error(errc::peer_dead, fmt::format("member {} (holder of the code) died", who)));
}

void node::fail_code_request(std::uint64_t request, status s) {
  auto it = code_requests_.find(request);
  if (it == code_requests_.end()) return;
  const auto req = std::move(it->second);
  code_requests_.erase(it);
  std::vector<frame> waiting;
  if (req.code.is_nil()) {
    waiting = std::move(waiting_for_symbol_[req.symbol]);
    waiting_for_symbol_.erase(req.symbol);
  } else {
    waiting = std::move(waiting_for_code_[req.code]);
    waiting_for_code_.erase(req.code);
  }
  for (auto& w : waiting) {
    const auto& c = std::get<wire::invoke_body>(w.body);
    reply_error(c.origin, c.origin_call,
                make_error(s.code() == errc::peer_dead ? errc::peer_dead : errc::unknown_code,
                           fmt::format("code for {} unavailable: {}", c.symbol, s.describe())));
  }
}

void node::handle_object_op(const frame& f) {
  auto answer = [&](result<void> r) {
    if (r) (void)member_->send(f.source, {frame_type::ack, config_.index, f.call, wire::empty_body{}});
    else reply_error(f.source, f.call, r.error());
  };
  if (f.type != frame_type::object_create) {
    // Not ours: pass it on towards the owner; the answer goes straight to the requester.
    const object_id id = f.type == frame_type::object_put      ? std::get<wire::object_put_body>(f.body).at.id
                         : f.type == frame_type::object_get    ? std::get<wire::object_get_body>(f.body).at.id
                                                               : std::get<wire::object_remove_body>(f.body).id;
    if (!store_->stat(id)) {
      const auto next = next_hop(id);
      if (!next)
        return reply_error(f.source, f.call, make_error(errc::not_found, fmt::format("no node holds object {}", id.to_string())));
      (void)member_->send(*next, f);  // source unchanged: the owner answers the requester directly
      hint_owner(f.source, id, *next);
      return;
    }
  }
  switch (f.type) {
    case frame_type::object_create: {
      const auto& b = std::get<wire::object_create_body>(f.body);
      auto made = store_->create(b.id, b.size);
      if (made) {
        owners_.learn(b.id, config_.index);
        tell_home(b.id, config_.index);
      }
      return answer(made ? result<void>{} : result<void>{made.error()});
    }
    case frame_type::object_put: {
      const auto& b = std::get<wire::object_put_body>(f.body);
      return answer(store_->write(b.at.id, b.at.offset, std::as_bytes(std::span(b.bytes))));
    }
    case frame_type::object_get: {
      const auto& b = std::get<wire::object_get_body>(f.body);
      auto bytes = store_->read(b.at.id, b.at.offset, b.length);
      if (!bytes) return reply_error(f.source, f.call, bytes.error());
      std::vector<std::uint8_t> data(bytes->size());
      std::memcpy(data.data(), bytes->data(), data.size());
      (void)member_->send(f.source, {frame_type::object_data, config_.index, f.call, wire::object_data_body{std::move(data)}});
      return;
    }
    case frame_type::object_remove: {
      const auto& b = std::get<wire::object_remove_body>(f.body);
      auto removed = store_->remove(b.id);
      if (removed) tell_home(b.id, wire::kNoNode);  // we keep "was ours"; the home forgets the owner
      return answer(removed);
    }
    default: return;
  }
}

void node::handle_invoke(frame&& f) {
  auto& call = std::get<wire::invoke_body>(f.body);
  if (call.deadline_us != 0 && wire::deadline_clock_us() > call.deadline_us)
    return reply_error(call.origin, call.origin_call,
                       make_error(errc::timeout, fmt::format("deadline passed before node {} could run {}",
                                                             config_.index, call.symbol)));
  if (call.hops > config_.max_hops)
    return reply_error(call.origin, call.origin_call,
                       make_error(errc::out_of_bounds, fmt::format("call of {} forwarded {} times (limit {})",
                                                                   call.symbol, call.hops, config_.max_hops)));
  const object_id target = call.target.id;
  const bool pinned = call.flags & wire::kInvokePinned;
  if (!pinned && !target.is_nil() && !store_->stat(target)) return route(std::move(f), target);
  ensure_code(std::move(f));
}

std::optional<node_index> node::next_hop(const object_id& id) const {
  // Our own record says we own it, yet it is not here: it was removed.
  const auto owner = owners_.owner(id);
  if (owner) return *owner == config_.index ? std::nullopt : owner;
  const node_index home = directory::home_of(id, config_.nodes);
  if (home == config_.index) return std::nullopt;  // the home does not know it
  return home;
}

void node::route(frame&& f, const object_id& target) {
  auto& call = std::get<wire::invoke_body>(f.body);
  const auto next = next_hop(target);
  if (!next)
    return reply_error(call.origin, call.origin_call,
                       make_error(errc::not_found, fmt::format("no node holds object {}", target.to_string())));
  ++call.hops;
  hint_owner(f.source, target, *next);
  f.source = config_.index;
  if (call.origin == config_.index) {  // one of our nested calls: remember its first hop
    std::lock_guard lock(nested_mu_);
    if (auto it = nested_.find(call.origin_call); it != nested_.end()) it->second->sent_to = *next;
  }
  if (auto s = member_->send(*next, f); !s.ok()) reply_error(call.origin, call.origin_call, s);
}

void node::ensure_code(frame&& f) {
  auto& call = std::get<wire::invoke_body>(f.body);
  code_entry* entry = nullptr;
  {
    std::lock_guard lock(code_mu_);
    if (!call.code.is_nil()) {
      if (auto it = code_.find(call.code); it != code_.end()) entry = it->second.get();
    }
  }
  if (!entry && call.code.is_nil()) entry = code_by_symbol(call.symbol);
  if (entry && entry->fn) {
    if (entry->run_inline.load(std::memory_order_relaxed)) return execute(entry, std::move(f));
    return submit([this, entry, f = std::move(f)]() mutable { execute(entry, std::move(f)); });
  }

  // Not loaded yet. Use code pushed with the call, else pull it.
  if (!call.code_blob.empty()) {
    auto co = code_object::decode(call.code_blob);
    if (!co) return reply_error(call.origin, call.origin_call, co.error());
    const auto id = co->id();
    if (!call.code.is_nil() && id != call.code)
      return reply_error(call.origin, call.origin_call,
                         make_error(errc::corrupt, fmt::format("pushed code object is {}, the call names {}",
                                                               id.to_string(), call.code.to_string())));
    call.code = id;
    call.code_blob.clear();
    const bool first = !waiting_for_code_.contains(id);
    waiting_for_code_[id].push_back(std::move(f));
    if (first) start_load(id, std::move(*co));
    return;
  }
  const bool by_symbol = call.code.is_nil();
  const bool first = by_symbol ? !waiting_for_symbol_.contains(call.symbol) : !waiting_for_code_.contains(call.code);
  const node_index holder = call.code_holder != wire::kNoNode ? call.code_holder : call.origin;
  const object_id code_id = call.code;
  const std::string symbol = call.symbol;
  if (by_symbol) waiting_for_symbol_[symbol].push_back(std::move(f));
  else waiting_for_code_[code_id].push_back(std::move(f));
  if (!first) return;  // a request is already out
  const std::uint64_t request = next_request_++;
  code_requests_[request] = code_request{code_id, symbol, holder};
  if (auto s = member_->send(holder, {frame_type::code_request, config_.index, request,
                                      wire::code_request_body{code_id, symbol}});
      !s.ok())
    fail_code_request(request, s);
}

void node::handle_code_request(const frame& f) {
  const auto& req = std::get<wire::code_request_body>(f.body);
  code_entry* entry = nullptr;
  {
    std::lock_guard lock(code_mu_);
    if (auto it = code_.find(req.code); it != code_.end()) entry = it->second.get();
  }
  if (!entry && !req.symbol.empty()) entry = code_by_symbol(req.symbol);
  if (!entry)
    return reply_error(f.source, f.call,
                       make_error(errc::unknown_code, fmt::format("node {} does not hold code {} ({})", config_.index,
                                                                  req.code.to_string(), req.symbol)));
  (void)member_->send(f.source, {frame_type::code_response, config_.index, f.call,
                                 wire::code_response_body{entry->code.encode()}});
}

void node::handle_code_response(frame&& f) {
  auto co = code_object::decode(std::get<wire::code_response_body>(f.body).blob);
  if (!co) return fail_code_request(f.call, co.error());
  code_requests_.erase(f.call);
  const auto id = co->id();
  // Calls waiting by symbol now wait by id.
  if (auto it = waiting_for_symbol_.find(co->symbol); it != waiting_for_symbol_.end()) {
    for (auto& w : it->second) std::get<wire::invoke_body>(w.body).code = id;
    auto& dst = waiting_for_code_[id];
    std::move(it->second.begin(), it->second.end(), std::back_inserter(dst));
    waiting_for_symbol_.erase(it);
  }
  if (!waiting_for_code_.contains(id)) return;  // nobody asked for this (or a duplicate)
  start_load(id, std::move(*co));
}

void node::start_load(const object_id& id, code_object code) {
  code_entry* entry;
  {
    std::lock_guard lock(code_mu_);
    auto& slot = code_[id];
    if (!slot) {
      slot = std::make_unique<code_entry>();
      slot->code = std::move(code);
      slot->id = id;
      slot->may_block = names_ferry_invoke(slot->code);
    }
    entry = slot.get();
  }
  jit_->load(entry->code, [this, entry, id](result<jit_function> loaded) {
    member_->post([this, entry, id, loaded = std::move(loaded)]() mutable {
      auto waiting = std::move(waiting_for_code_[id]);
      waiting_for_code_.erase(id);
      if (!loaded) {
        for (auto& w : waiting) {
          const auto& c = std::get<wire::invoke_body>(w.body);
          reply_error(c.origin, c.origin_call, loaded.error());
        }
        return;
      }
      if (!entry->fn) entry->fn = std::move(*loaded);
      for (auto& w : waiting) submit([this, entry, w = std::move(w)]() mutable { execute(entry, std::move(w)); });
    });
  });
}

code_entry* node::code_by_symbol(std::string_view symbol) {
  std::lock_guard lock(code_mu_);
  for (auto& [id, e] : code_)
    if (e->code.symbol == symbol && e->fn) return e.get();
  return nullptr;
}

// ---------------------------------------------------------------------------
// Execution (executor threads)

void node::submit(std::function<void()> task) {
  {
    std::lock_guard lock(exec_mu_);
    tasks_.push_back(std::move(task));
  }
  exec_cv_.notify_one();
}

void node::executor_loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(exec_mu_);
      exec_cv_.wait(lock, [&] { return exec_stop_ || !tasks_.empty(); });
      if (exec_stop_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

namespace {
// The one place that enters mobile code: failures in the runtime API
// longjmp back here (mobile code is C-like, and jit_function's call operator
// holds nothing with a destructor). The call operator counts calls, so hot
// code gets recompiled optimized.
std::int32_t run_guarded(call_context& cx, const jit_function& fn, const void* args, void* result) {
  if (setjmp(cx.abort) != 0) return static_cast<std::int32_t>(cx.failure.code());
  return fn(reinterpret_cast<ferry_context*>(&cx), args, result);
}
}  // namespace

void node::execute(code_entry* entry, frame f) {
  const auto& call = std::get<wire::invoke_body>(f.body);
  const auto& co = entry->code;
  if (call.signature_hash != 0 && call.signature_hash != co.signature_hash)
    return reply_error(call.origin, call.origin_call,
                       make_error(errc::invalid_argument,
                                  fmt::format("caller's signature of {} does not match the code object", co.name)));
  if (call.args.size() != co.args_size)
    return reply_error(call.origin, call.origin_call,
                       make_error(errc::invalid_argument, fmt::format("{} takes {} bytes of arguments, got {}", co.name,
                                                                      co.args_size, call.args.size())));
  call_context cx;
  cx.self = this;
  cx.code = entry;
  cx.call = &call;
  std::vector<std::uint8_t> result(co.result_size);
  const jit_function fn = entry->fn;  // holds the code while it runs
  (member_->driving() ? calls_inline_ : calls_on_executor_).fetch_add(1, std::memory_order_relaxed);
  const auto started = std::chrono::steady_clock::now();
  const std::int32_t rc = run_guarded(cx, fn, call.args.data(), result.data());
  entry->run_inline.store(!entry->may_block && std::chrono::steady_clock::now() - started < config_.inline_budget,
                          std::memory_order_relaxed);
  if (rc != 0) {
    const status s = cx.failure.ok() ? make_error(static_cast<errc>(rc), fmt::format("{} failed", co.name)) : cx.failure;
    return reply_error(call.origin, call.origin_call, s);
  }
  if (cx.forwarded) {
    frame next{frame_type::invoke, config_.index, 0, std::move(cx.forward)};
    const object_id target = std::get<wire::invoke_body>(next.body).target.id;
    return member_->post([this, next = std::move(next), target]() mutable {
      if (store_->stat(target)) return ensure_code(std::move(next));
      route(std::move(next), target);
    });
  }
  (void)member_->send(call.origin, {frame_type::reply, config_.index, call.origin_call, wire::reply_body{std::move(result)}});
}

// ---------------------------------------------------------------------------
// Runtime API backends

void node::fail_call(call_context& cx, status s) {
  cx.failure = std::move(s);
  std::longjmp(cx.abort, 1);
}

void* node::local(call_context& cx, const ferry_ref& r, std::uint64_t size) {
  const object_id id = id_of(r);
  auto bytes = store_->local(id);
  if (!bytes) {
    fail_call(cx, bytes.code() == errc::not_found
                      ? make_error(errc::not_local, fmt::format("object {} is not on node {}", id.to_string(), config_.index))
                      : bytes.error());
  }
  if (r.offset > bytes->size() || bytes->size() - r.offset < size)
    fail_call(cx, make_error(errc::out_of_bounds, fmt::format("cx.local: [{}, +{}) outside object {} ({} bytes)", r.offset,
                                                              size, id.to_string(), bytes->size())));
  return bytes->data() + r.offset;
}

void node::forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size) {
  const auto symbol = cx.code->fn.symbol_at(fn);
  if (!symbol)
    fail_call(cx, make_error(errc::unknown_code, "cx.forward: the function is not a mobile function this code references"));
  wire::invoke_body next;
  const bool self = *symbol == cx.code->code.symbol;
  next.code = self ? cx.code->id : object_id{};
  next.symbol = *symbol;
  next.signature_hash = self ? cx.code->code.signature_hash : 0;
  next.origin = cx.call->origin;
  next.origin_call = cx.call->origin_call;
  next.code_holder = self ? config_.index : cx.call->code_holder;
  next.deadline_us = cx.call->deadline_us;
  next.hops = static_cast<std::uint16_t>(cx.call->hops + 1);
  next.target = ref<void>{id_of(target), target.offset};
  next.args.assign(static_cast<const std::uint8_t*>(args), static_cast<const std::uint8_t*>(args) + size);
  cx.forward = std::move(next);
  cx.forwarded = true;
}

void node::invoke_nested(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
                         std::uint64_t size, void* out, std::uint64_t out_size) {
  const auto symbol = cx.code->fn.symbol_at(fn);
  if (!symbol)
    fail_call(cx, make_error(errc::unknown_code, "cx.invoke: the function is not a mobile function this code references"));
  if (member_->driving())  // cannot happen: code naming ferry_invoke never runs inline; never deadlock
    fail_call(cx, make_error(errc::unsupported, "cx.invoke on the network thread"));
  const std::uint64_t call_id = next_nested_++;
  auto w = std::make_shared<nested_wait>();
  w->target = id_of(target);
  {
    std::lock_guard lock(nested_mu_);
    nested_[call_id] = w;
  }
  const bool self = *symbol == cx.code->code.symbol;
  wire::invoke_body b;
  b.code = self ? cx.code->id : object_id{};
  b.symbol = *symbol;
  b.origin = config_.index;
  b.origin_call = call_id;
  b.code_holder = self ? config_.index : cx.call->code_holder;
  b.deadline_us = cx.call->deadline_us;
  b.target = ref<void>{id_of(target), target.offset};
  b.args.assign(static_cast<const std::uint8_t*>(args), static_cast<const std::uint8_t*>(args) + size);
  frame f{frame_type::invoke, config_.index, call_id, std::move(b)};
  member_->post([this, f = std::move(f)]() mutable { handle_invoke(std::move(f)); });

  const auto deadline = cx.call->deadline_us ? std::chrono::system_clock::time_point(std::chrono::microseconds(cx.call->deadline_us))
                                             : std::chrono::system_clock::now() + std::chrono::seconds(60);
  std::unique_lock lock(w->mu);
  const bool done = w->cv.wait_until(lock, deadline, [&] { return w->done; });
  {
    std::lock_guard g(nested_mu_);
    nested_.erase(call_id);
  }
  if (!done) fail_call(cx, make_error(errc::timeout, fmt::format("nested call of {} passed its deadline", *symbol)));
  if (!w->error.ok()) fail_call(cx, w->error);
  if (w->result.size() != out_size)
    fail_call(cx, make_error(errc::invalid_argument, fmt::format("nested call of {} returned {} bytes, caller expects {}",
                                                                 *symbol, w->result.size(), out_size)));
  if (out_size) std::memcpy(out, w->result.data(), out_size);
}

}  // namespace ferry::node
