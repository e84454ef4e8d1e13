#include "node.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "code/server.hpp"
#include "directory/notify.hpp"
#include "placement/cost_model.hpp"

namespace ferry::node {

using wire::frame;
using wire::frame_type;

namespace {

std::map<std::string, void*> runtime_api_symbols() {
  return {{"ferry_local", reinterpret_cast<void*>(&ferry_local)},
          {"ferry_view", reinterpret_cast<void*>(&ferry_view)},
          {"ferry_read", reinterpret_cast<void*>(&ferry_read)},
          {"ferry_forward", reinterpret_cast<void*>(&ferry_forward)},
          {"ferry_invoke", reinterpret_cast<void*>(&ferry_invoke)},
          {"ferry_resolve", reinterpret_cast<void*>(&ferry_resolve)},
          {"ferry_make_ptr", reinterpret_cast<void*>(&ferry_make_ptr)},
          {"ferry_fetch", reinterpret_cast<void*>(&ferry_fetch)},
          {"ferry_migrate", reinterpret_cast<void*>(&ferry_migrate)},
          {"ferry_node_id", reinterpret_cast<void*>(&ferry_node_id)},
          {"ferry_node_kind", reinterpret_cast<void*>(&ferry_node_kind)},
          {"ferry_node_triple", reinterpret_cast<void*>(&ferry_node_triple)},
          {"ferry_node_cpu", reinterpret_cast<void*>(&ferry_node_cpu)}};
}

// CPUs this process may run on (its affinity, which `ferry node --cores`
// sets before the node starts).
std::int64_t usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace

result<std::unique_ptr<node>> node::create(node_config config) {
  if (config.nodes == 0 || config.index >= config.nodes)
    return make_error(errc::invalid_argument,
                      fmt::format("node index {} outside a cluster of {} nodes", config.index, config.nodes));
  std::unique_ptr<node> n(new node(std::move(config)));
  auto& c = n->config_;
  if (c.store_dir.empty()) {
    n->store_ = store::open_memory();
  } else {
    FERRY_TRY(n->store_, store::open_directory(c.store_dir));
  }
  std::uint64_t limit = c.memory_limit;
  if (limit == 0 && c.store_dir.empty())
    limit = static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  n->store_->set_memory_limit(limit);
  auto jc = c.jit;
  for (auto& [name, addr] : runtime_api_symbols()) jc.runtime_symbols.emplace(name, addr);
  FERRY_TRY(n->jit_, jit::create(std::move(jc)));
  n->triple_ = n->jit_->target().triple;
  n->cpu_ = n->jit_->target().cpu;
  c.member.self = c.index;
  c.member.poll_without_yield = session::poll_budget(c.nodes + 1);  // the nodes and a client, here
  c.member.thread_name = "ferry-node";
  c.member.abort_when_deaf = true;  // a node that can hear no one is restarted, not left serving nothing
  FERRY_TRY(n->member_, session::member::create(c.member));
  n->router_ = std::make_unique<directory::router>(c.index, c.nodes, c.directory);
  n->discovery_ = std::make_unique<directory::discovery>(*n->router_, *n->member_);
  n->policy_ = std::make_unique<exec::dispatch_policy>(std::max(1u, c.executors), c.inline_budget,
                                                      std::max(1u, c.object_threads));
  n->runner_ = std::make_unique<exec::runner>(exec::node_identity{c.index, c.kind, n->triple_, n->cpu_}, *n->store_,
                                              *n->router_, *n->discovery_, *n->member_, n->calls_, *n->policy_,
                                              [raw = n.get()](frame&& f) { raw->handle_invoke(std::move(f)); });
  n->runner_->set_fuel_per_call(c.fuel_per_call);
  n->loader_ = std::make_unique<code::loader>(
      *n->jit_, *n->member_, n->calls_,
      [raw = n.get()](code::code_entry* code, frame&& f) { raw->dispatch(code, std::move(f)); },
      [raw = n.get()](const wire::invoke_body& call, const status& s) {
        raw->runner_->reply_error(call.origin, call.origin_call, s);
      });
  n->objects_ = std::make_unique<object::object_service>(
      *n->store_, *n->router_, *n->discovery_, *n->member_,
      [raw = n.get()](node_index next, const frame& f) { raw->remember_forwarded(next, {f.source, f.call, 0}); },
      [raw = n.get()](frame&& f) { raw->on_frame(std::move(f)); },
      c.kind == FERRY_NODE_STORAGE ? object::object_service::get_from::at_rest : object::object_service::get_from::memory);
  FERRY_TRY(n->moves_, object::move_log::open(c.store_dir));
  n->migration_ = std::make_unique<object::migration>(*n->store_, *n->moves_, *n->router_, *n->member_, n->calls_,
                                                      *n->policy_,
                                                      [raw = n.get()](frame&& f) { raw->on_frame(std::move(f)); },
                                                      c.crash_at);
  n->migration_->recover();  // moves a crash interrupted, before anything is served
  n->ifuncs_ = std::make_unique<ifunc::service>(
      *n->member_, c.nodes,
      ifunc::node_side{n->policy_.get(), n->store_.get(),
                       c.fuel_per_call, c.jit.trusted_signers,
                       c.jit.trusted_signers.empty() && c.jit.trust != jit_trust::trusted
                           ? make_error(errc::unsigned_code, "this node runs only sandbox-checked code and trusts no "
                                                             "key: it takes no ifunc messages (start it with "
                                                             "--trust-keys and sign them with `ferry sign --ifunc`)")
                           : status{},
                       /*engine_at_start=*/c.kind != FERRY_NODE_DPU});
  n->member_->on_frame([raw = n.get()](frame&& f) { raw->on_frame(std::move(f)); });
  n->member_->on_data_frame(
      [raw = n.get()](const frame& f, std::span<const std::uint8_t> data) { raw->on_data_frame(f, data); });
  n->member_->on_peer_dead([raw = n.get()](node_index who) { raw->on_peer_dead(who); });
  n->member_->on_peer_alive([raw = n.get()](node_index who) {  // paused, not gone: moves it decides can go on
    if (who < raw->config_.nodes) raw->migration_->source_back(who);
  });
  n->member_->report_load([raw = n.get()] { return raw->load(); });
  // Executors computing on every core this process may use (ferry node
  // --cores): the network thread blocks when idle instead of yielding its
  // core to them until the next scheduler tick.
  n->member_->yield_cores_while([raw = n.get(), cores = usable_cores()] { return raw->policy_->computing() >= cores; });
  n->member_->start();
  return n;
}

node::~node() {
  if (!member_) return;  // create() failed before the threads started
  policy_->shutdown();   // executors first: they send through the member
  member_->stop();       // then the frames that reach every stage
  jit_.reset();          // loads still running end with cancelled (posted to a stopped member)
}

result<std::vector<node::unreachable_node>> node::join(cluster::bootstrap& bs, std::chrono::milliseconds timeout) {
  if (bs.self() != config_.index || bs.nodes() != config_.nodes)
    return make_error(errc::invalid_argument,
                      fmt::format("node {} of {} joining as member {} of a cluster of {} nodes ({})", config_.index,
                                  config_.nodes, bs.self(), bs.nodes(), bs.describe()));
  FERRY_TRY_STATUS(bs.publish(member_->address()));
  FERRY_TRY(auto addresses, bs.node_addresses(timeout));
  const frame hello{frame_type::hello, config_.index, 0, own_hello()};
  std::vector<unreachable_node> unreachable;
  for (node_index i = 0; i < config_.nodes; ++i) {
    if (i == config_.index) continue;
    if (auto c = member_->connect(i, addresses[i]); !c) {
      unreachable.push_back({i, c.error()});
      continue;
    }
    FERRY_TRY_STATUS(result<void>(member_->send(i, hello)));
  }
  // Objects a persistent store kept across a restart: their homes forgot us
  // when we said hello (on_hello).
  for (const auto& [id, moves] : kept_objects()) {
    router_->learn(id, config_.index, moves);
    directory::tell_home(*member_, *router_, id, config_.index, moves);
  }
  // Moves a crash interrupted: their homes learn where the objects went, and
  // objects that arrived here ask their sources.
  migration_->announce_moved();
  migration_->ask_sources();
  // Clients of an earlier incarnation of this node: they reconnect when they
  // hear from it. Some may be gone; their silence gets them declared dead.
  for (auto& [k, address] : bs.clients())
    if (member_->connect(k, std::move(address))) (void)member_->send(k, hello);
  // Clients that said hello meanwhile get their answer last, after every
  // write above (the member sends in order): once a client has joined,
  // this node is partway through none of them.
  std::vector<std::pair<node_index, std::uint64_t>> waiting;
  {
    std::lock_guard lock(join_mu_);
    joined_ = true;
    waiting.swap(unanswered_);
  }
  for (const auto& [k, call] : waiting) (void)member_->send(k, {frame_type::hello, config_.index, call, own_hello()});
  return unreachable;
}

std::vector<std::pair<object_id, std::uint64_t>> node::kept_objects() const {
  std::vector<std::pair<object_id, std::uint64_t>> kept;
  for (const auto& id : store_->list()) {
    const auto info = store_->stat(id);
    kept.emplace_back(id, info ? info->moves : 0);
  }
  for (const auto& [id, why] : store_->damaged()) kept.emplace_back(id, 0);
  return kept;
}

wire::hello_body node::own_hello() const { return {config_.index, config_.kind, triple_, cpu_, member_->address()}; }

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

// ---------------------------------------------------------------------------
// Frames (the driving thread)

void node::on_frame(frame&& f) {
  switch (f.type) {
    case frame_type::hello: return on_hello(std::move(f));
    case frame_type::invoke: return handle_invoke(std::move(f));
    case frame_type::code_request:
      return code::serve_code_request(*member_, f, [this](const object_id& id, std::string_view symbol) {
        return loader_->encoded(id, symbol);
      });
    case frame_type::object_create:
    case frame_type::object_put:
    case frame_type::object_get:
    case frame_type::object_remove: {
      const object_id id = object::object_service::subject_of(f);
      const auto admitted = migration_->admit(id, f);
      if (!admitted) return;  // held while the object moves
      return policy_->blocking([this, admitted = *admitted, f = std::move(f)] {
        objects_->handle(f);
        object::migration::release(admitted);
      });
    }
    case frame_type::object_migrate: return migration_->on_migrate(std::move(f));
    case frame_type::object_image:  // a part of a move's image, taken as it is handled (exec/dispatch.hpp)
      return migration_->on_image(f, std::as_bytes(std::span(*wire::data_bytes(f))));
    case frame_type::object_commit:
    case frame_type::object_abort:
    case frame_type::object_move_query:
      if (f.source >= config_.nodes) return refuse(f, "only nodes move objects", f.type == frame_type::object_commit);
      if (f.type == frame_type::object_move_query) return migration_->on_query(std::move(f));
      return policy_->blocking([this, f = std::move(f)] {
        if (f.type == frame_type::object_commit) migration_->on_commit(f);
        else migration_->on_abort(f);
      });
    case frame_type::dir_register: {
      // Only nodes keep the directory, and owners are nodes.
      const auto& d = std::get<wire::dir_register_body>(f.body);
      if (f.source >= config_.nodes || (d.owner >= config_.nodes && d.owner != wire::kNoNode))
        return refuse(f, "a directory entry from a non-node, or naming a non-node owner", false);
      if (f.call != 0) return discovery_->on_answer(f.source, d);  // answers a dir_lookup of ours
      return router_->apply(d);
    }
    case frame_type::dir_lookup: return answer_lookup(f);
    case frame_type::ifunc: return ifuncs_->on_frame(std::move(f));  // <ferry/ifunc.h> messages
    // Answers to this node's own requests (nested calls, code requests, cx.fetch, moves).
    case frame_type::reply:
    case frame_type::code_response:
    case frame_type::object_data:
    case frame_type::ack:
    case frame_type::error: (void)calls_.answer(f); return;
    case frame_type::echo:
      (void)member_->send(f.source, {frame_type::echo, config_.index, f.call, std::move(f.body)});
      return;
    // A node is stopped by whoever started it (a signal), not by a peer.
    case frame_type::shutdown: return refuse(f, "a node is stopped by a signal, not by a frame", true);
    default: return refuse(f, "a node does not accept these frames", true);
  }
}

void node::on_data_frame(const frame& f, std::span<const std::uint8_t> data) {
  if (f.type == frame_type::object_data) {  // an answer to this node's own get (cx.fetch, a pull)
    (void)calls_.complete(f.call, data, {});
    return;
  }
  // A put to an object in memory here is written from the transport's
  // buffer at once (exec/dispatch.hpp); any other takes the frame's way.
  if (objects_->takes_in_place(f, data.size())) {
    if (const auto admitted = migration_->try_admit(object::object_service::subject_of(f))) {
      puts_in_place_.fetch_add(1, std::memory_order_relaxed);  // before the answer: a caller that has it sees the count
      objects_->put_in_place(f, data);
      object::migration::release(*admitted);
      return;
    }
  }
  // A part of a move's image is copied from the transport's buffer into
  // the image it belongs to at once (a node that keeps its pending images in
  // memory also stores the whole image here: a check and a copy).
  if (f.type == frame_type::object_image) {
    image_parts_.fetch_add(1, std::memory_order_relaxed);
    migration_->on_image(f, std::as_bytes(data));
    return;
  }
  frame whole = f;
  if (auto* bytes = wire::data_bytes(whole)) bytes->assign(data.begin(), data.end());
  on_frame(std::move(whole));
}

void node::refuse(const frame& f, std::string_view why, bool answer) {
  refused_.fetch_add(1, std::memory_order_relaxed);
  if (answer)
    runner_->reply_error(f.source, f.call,
                         make_error(errc::invalid_argument, fmt::format("{} frame refused: {}", wire::to_string(f.type), why)));
}

void node::on_hello(frame&& f) {
  const auto& h = std::get<wire::hello_body>(f.body);
  const auto change = member_->learn(h.index, h.address);
  if (!change) return refuse(f, "its address cannot be connected to", false);
  if (h.index >= config_.nodes) {  // a client: tell it who we are (its join waits for this answer: the call echoed)
    {
      std::lock_guard lock(join_mu_);
      if (!joined_) {  // answered at the end of join(), after its own writes
        unanswered_.emplace_back(h.index, f.call);
        return;
      }
    }
    (void)member_->send(h.index, {frame_type::hello, config_.index, f.call, own_hello()});
    return;
  }
  // A node restarted, or one this node has not known: it was down when this
  // one started (join(): its address could not be connected to), so its
  // directory may lack what this node registered meanwhile. (A node that
  // starts with the others can also say hello before join() has connected
  // to it: then the work below repeats what join() does, harmlessly.)
  if (*change == session::member::change::unchanged) return;
  // Pass its hello on to our clients: a bootstrap that keeps no client
  // addresses could not tell it where they are.
  const node_index restarted = h.index;
  f.source = config_.index;
  for (const node_index k : member_->live_members())
    if (k >= config_.nodes) (void)member_->send(k, f);
  // What it owned is gone or re-registered by it (join()); the directory
  // entries it was home of are gone: register ours again.
  router_->forget_owner(restarted);
  migration_->source_back(restarted);     // moves to here it may now decide
  migration_->announce_moved(restarted);  // moves from here it is home of
  policy_->blocking([this, restarted] {
    for (const auto& [id, moves] : kept_objects())
      if (router_->home_of(id) == restarted) directory::tell_home(*member_, *router_, id, config_.index, moves);
  });
}

void node::answer_lookup(const frame& f) {
  const object_id id = std::get<wire::object_remove_body>(f.body).id;
  // Only the owner says yes: a cached owner may be stale. The store is asked
  // without blocking (stat takes its lock, no I/O). A node the object is
  // moving to says yes too (it holds the requests until the move lands):
  // the source has dropped its copy by then.
  const auto info = store_->stat(id);
  const node_index owner = info || migration_->arriving(id) ? config_.index : wire::kNoNode;
  (void)member_->send(f.source, {frame_type::dir_register, config_.index, 1,
                                 wire::dir_register_body{id, owner, info ? info->moves : 0}});
}

void node::on_peer_dead(node_index who) {
  discovery_->peer_dead(who);
  // Calls waiting here for a move it was deciding fail now (its moves stay
  // pending until it is back).
  if (who < config_.nodes) migration_->source_dead(who);
  forwarded_ring lost;
  {
    std::lock_guard lock(forwarded_mu_);
    if (who < forwarded_.size()) std::swap(lost, forwarded_[who]);
  }
  const std::uint64_t now = wire::deadline_clock_us();
  for (const auto& c : lost.calls)
    if (c.deadline_us == 0 || c.deadline_us >= now)
      runner_->reply_error(c.origin, c.call,
                           make_error(errc::peer_dead, fmt::format("passed on to node {}, which stopped answering "
                                                                   "or restarted", who)));
  // Nested calls and code requests that depend on the dead member fail now,
  // not at their deadline.
  calls_.fail_peer(who, who < config_.nodes, [this](const object_id& id) { return router_->owner(id); },
                   make_error(errc::peer_dead, fmt::format("member {} stopped answering (heartbeat lost)", who)));
}

wire::load_body node::load() const {
  wire::load_body b = policy_->load();
  b.pulled_calls = runner_->pulled_calls();
  b.pulled_bytes = runner_->pulled_bytes();
  b.recompiling = static_cast<std::uint32_t>(std::min<std::uint64_t>(jit_->stats().recompiling, UINT32_MAX));
  b.load_permille = placement_inputs::machine_load_permille();
  return b;
}

void node::handle_invoke(frame&& f) {
  auto& call = std::get<wire::invoke_body>(f.body);
  // The coarse clock: a call at most one kernel tick past its deadline may
  // still run (the runner and the caller's own wait read the exact clocks).
  if (call.deadline_us != 0 && wire::coarse_deadline_clock_us() > call.deadline_us)
    return runner_->reply_error(call.origin, call.origin_call,
                                make_error(errc::timeout, fmt::format("deadline passed before node {} could run {}",
                                                                      config_.index, call.symbol)));
  if (call.hops > config_.max_hops)
    return runner_->reply_error(call.origin, call.origin_call,
                                make_error(errc::out_of_bounds, fmt::format("call of {} forwarded {} times (limit {})",
                                                                            call.symbol, call.hops, config_.max_hops)));
  const object_id target = call.target.id;
  // Pinned, or sent here by placement to run on pulled data: runs here.
  const bool pinned = call.flags & (wire::kInvokePinned | wire::kInvokePull | wire::kInvokeLoadOnly);
  if (!pinned && !target.is_nil() && !store_->holds(target)) return route(std::move(f), target);
  loader_->ensure(std::move(f));
}

void node::dispatch(code::code_entry* code, frame&& f) {
  if (std::get<wire::invoke_body>(f.body).flags & wire::kInvokeLoadOnly) return runner_->loaded(*code, f);
  const object_id target = std::get<wire::invoke_body>(f.body).target.id;
  const auto admitted = migration_->admit(target, f);
  if (!admitted) return;  // runs (or is routed) once the move ends
  // Moved away while its code was being loaded: route it after the object.
  if (migration_->moved_out() != 0 &&
      !(std::get<wire::invoke_body>(f.body).flags & (wire::kInvokePinned | wire::kInvokePull)) &&
      !target.is_nil() && !store_->holds(target)) {
    object::migration::release(*admitted);
    return route(std::move(f), target);
  }
  policy_->call(*code, std::move(f), [this, code, admitted = *admitted](frame&& g) {
    runner_->run(code, std::move(g));
    object::migration::release(admitted);
  });
}

void node::route(frame&& f, const object_id& target) {
  if (migration_->hold(target, f)) return;  // arriving here in a move: runs here once it is live
  if (auto damage = store_->damage_of(target)) {
    // Damaged here (a crash tore it): say so, as object requests do (object_service::serve).
    const auto& call = std::get<wire::invoke_body>(f.body);
    return runner_->reply_error(call.origin, call.origin_call, std::move(*damage));
  }
  if (router_->must_discover(target)) {
    // Ask every node first; route again once the owner is known (or nobody has it).
    const auto& call = std::get<wire::invoke_body>(f.body);
    auto missing = [this, origin = call.origin, origin_call = call.origin_call](const status& s) {
      runner_->reply_error(origin, origin_call, s);
    };
    return discovery_->find_then(
        target, [this, target, f = std::move(f)]() mutable { route(std::move(f), target); }, std::move(missing));
  }
  auto& call = std::get<wire::invoke_body>(f.body);
  const auto next = router_->next_hop(target);
  if (!next)
    return runner_->reply_error(call.origin, call.origin_call,
                                make_error(errc::not_found, fmt::format("no node holds object {}", target.to_string())));
  ++call.hops;
  directory::hint_owner(*member_, *router_, f.source, target, *next);
  f.source = config_.index;
  if (call.origin == config_.index) calls_.set_first_hop(call.origin_call, *next);  // one of our nested calls
  if (auto s = member_->send(*next, f); !s.ok()) return runner_->reply_error(call.origin, call.origin_call, s);
  remember_forwarded(*next, {call.origin, call.origin_call, call.deadline_us});
}

void node::remember_forwarded(node_index to, const forwarded_call& c) {
  std::lock_guard lock(forwarded_mu_);
  if (to >= forwarded_.size()) forwarded_.resize(std::size_t{to} + 1);
  auto& ring = forwarded_[to];
  if (ring.calls.size() < kMaxForwarded) return ring.calls.push_back(c);
  ring.calls[ring.oldest] = c;
  ring.oldest = (ring.oldest + 1) % kMaxForwarded;
}

}  // namespace ferry::node
