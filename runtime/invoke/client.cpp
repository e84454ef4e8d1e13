// ④ invoke (sending side): the client runtime. Packs calls, routes them to
// the owner of their data, serves its code objects to nodes that miss them,
// and completes futures from reply/error frames.
#include <ferry/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <set>
#include <unordered_map>

#include <ferry/code_registry.hpp>
#include "jit/jit.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bootstrap/bootstrap.hpp"
#include "calls/call_table.hpp"
#include "core/last_answer.hpp"
#include "invoke/call_state.hpp"
#include "code/server.hpp"
#include "code/traits.hpp"
#include "directory/discovery.hpp"
#include "directory/router.hpp"
#include "exec/caller_host.hpp"
#include "ifunc/service.hpp"
#include "placement/cost_model.hpp"
#include "placement/measured_calls.hpp"
#include "placement/measured_links.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry {

using wire::frame;
using wire::frame_type;
using wire::node_index;

runtime_options runtime_options::from_environment() {
  runtime_options o;
  if (const char* v = std::getenv("FERRY_BOOTSTRAP")) o.bootstrap = v;
  if (const char* v = std::getenv("FERRY_RENDEZVOUS")) o.rendezvous = v;
  if (const char* v = std::getenv("FERRY_HOSTS")) o.hosts = v;
  if (const char* v = std::getenv("FERRY_TRANSPORT")) o.transport = v;
  if (const char* v = std::getenv("FERRY_TLS")) o.tls = v;
  if (const char* v = std::getenv("FERRY_DIRECTORY")) o.directory = v;
  if (const char* v = std::getenv("FERRY_OFI_PROVIDER")) o.provider = v;
  if (const char* v = std::getenv("FERRY_CALLER_SPEED")) o.caller_speed = std::strtod(v, nullptr);
  return o;
}

struct runtime::impl final : detail::progress_driver {
  runtime_options options;
  std::uint32_t nodes = 0;
  std::unique_ptr<session::member> member;
  std::unique_ptr<directory::router> router;
  std::unique_ptr<directory::discovery> discovery;  // the e2e scheme's lookups
  calls::call_table calls;  // after the member: ~impl() fails what is left before the member goes
  std::unique_ptr<cluster::bootstrap> boot;  // goes before the member: ~impl() leaves while heartbeats still run
  std::shared_ptr<detail::driver_link> link;  // made once the cluster's size is known (join)
  std::unique_ptr<ifunc::service> ifuncs;     // <ferry/ifunc.h>: messages nodes send back to this program

  mutable std::mutex mu;
  std::vector<node_info> infos;  // by node index, filled by hello frames
  std::vector<bool> answered;    // by node index: it answered our join hello (guarded by mu)
  /// The call field of this client's join hellos; a node's answer echoes it.
  static constexpr std::uint64_t kJoinHello = 1;
  std::condition_variable hello_cv;
  std::set<std::pair<node_index, object_id>> pushed;  // code we pushed eagerly
  std::unordered_map<const code_object*, bool> forwards;  // code::may_forward, once per code object
  std::atomic<std::uint64_t> requests{0}, redirects{0};   // runtime_stats
  std::atomic<std::uint64_t> placed_owner{0}, placed_pulled{0}, placed_caller{0};

  // ⑤ place: automatic placement's policy and what it is told.
  std::shared_ptr<placement_policy> policy = std::make_shared<cost_model>();  // guarded by mu
  std::unordered_map<object_id, std::uint64_t> sizes;  // objects this process created or moved: their size (mu)
  std::unordered_map<const code_object*, std::uint64_t> code_sizes;  // encoded size (mu)
  /// Times to the answer of automatically placed calls (shared with their completions).
  std::shared_ptr<placement_inputs::measured_calls> measured = std::make_shared<placement_inputs::measured_calls>();
  /// Bandwidths of this process's bulk transfers to each node (object gets and puts).
  placement_inputs::measured_links links;

  /// An automatically placed call's answer: measured, then delivered.
  struct measured_answer {
    std::shared_ptr<detail::call_state> state;
    std::shared_ptr<placement_inputs::measured_calls> table;
    placement_inputs::measured_calls::place at;
    std::chrono::steady_clock::time_point sent;
    bool carried_code = false;  // its time includes shipping and compiling the code: not measured
    void on_answer(std::span<const std::uint8_t> bytes, status&& s) {
      const auto now = std::chrono::steady_clock::now();
      if (carried_code) table->ended(at);
      else table->answered(at, now - sent, s, now);
      state->on_answer(bytes, std::move(s));
    }
  };

  /// Ask the placement policy where a call of `code` on `target`, owned by
  /// `owner`, should run.
  placement_decision place(const code_object& code, const object_id& code_id, const object_id& target,
                           node_index owner, std::size_t args_bytes) {
    std::vector<placement_candidate> candidates;
    placement_input in;
    std::shared_ptr<placement_policy> chooser;
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu);
      chooser = policy;
      for (const auto& n : infos) {
        placement_candidate c;
        c.node = n.id;
        c.kind = n.kind;
        c.alive = n.alive;
        c.owner = n.id == owner;
        c.has_code = pushed.contains({n.id, code_id});
        c.load = n.load;
        c.link = links.link(n.id, placement_inputs::for_transport(n.transport, n.kind));
        const auto m = measured->look({code_id, n.id, !c.owner}, now);
        c.observed_us = m.us;
        c.observing = m.on_the_way;
        candidates.push_back(c);
      }
      if (auto it = sizes.find(target); it != sizes.end()) in.object_bytes = it->second;
      auto [cs, fresh] = code_sizes.try_emplace(&code, 0);
      if (fresh) cs->second = code.encode().size();
      in.code_bytes = cs->second;
    }
    if (options.caller_speed > 0) {
      placement_candidate c;
      c.node = kCaller;
      c.has_code = true;  // compiled into this program
      c.load.load_permille = placement_inputs::machine_load_permille();
      candidates.push_back(c);
    }
    in.function = code.name;
    in.owner = owner;
    in.args_bytes = args_bytes;
    in.caller_speed = options.caller_speed;
    in.candidates = candidates;
    auto d = chooser->choose(in);
    const bool known = d.node == kCaller ? options.caller_speed > 0 : d.node < nodes;
    if (!known) {  // a policy's mistake: keep the call where its data is
      d.reason = fmt::format("the policy chose {} which is no candidate; sent to the owner", d.node);
      d.node = owner;
    }
    (d.node == owner ? placed_owner : d.node == kCaller ? placed_caller : placed_pulled)
        .fetch_add(1, std::memory_order_relaxed);
    return d;
  }

  /// Calls of `code` may move between nodes (calls::depends_on::travels).
  /// Code objects are registered for the life of the process and never
  /// change, so a thread remembers the last answer without the lock.
  bool travels(const code_object& code) {
    static const std::uint64_t table = core::next_table_serial();  // the answers never change: generation 0
    thread_local core::last_answer<const code_object*, bool> last;
    if (const bool* known = last.find(table, 0, &code)) return *known;
    std::lock_guard lock(mu);
    auto [it, fresh] = forwards.try_emplace(&code, false);
    if (fresh) it->second = code::may_forward(code);
    last.keep(table, 0, &code, it->second);
    return it->second;
  }

  ~impl() {
    if (ifuncs && ifunc::process_service() == ifuncs.get()) ifunc::set_process_service(nullptr);
    if (boot) (void)boot->leave();  // under PMIx: wait for the job's other clients (bootstrap.hpp)
    if (member) member->stop();     // no frame handler runs once the state it uses starts to go
  }

  status join() {
    cluster::bootstrap_options bo;
    bo.mode = options.bootstrap;
    bo.rendezvous = options.rendezvous;
    bo.hosts = options.hosts;
    bo.timeout = options.join_timeout;
    FERRY_TRY(boot, cluster::open_bootstrap(cluster::bootstrap_role::client, bo));
    nodes = boot->nodes();
    const node_index self = boot->self();
    const auto scheme = directory::parse_scheme(options.directory);
    if (!scheme)
      return make_error(errc::invalid_argument,
                        fmt::format("directory scheme '{}': expected home or e2e", options.directory));
    router = std::make_unique<directory::router>(self, nodes, *scheme);
    const auto poll = session::poll_budget(nodes + 1);
    link = std::make_shared<detail::driver_link>(this, poll);
    infos.assign(nodes, node_info{});
    answered.assign(nodes, false);
    session::member_config mc;
    mc.transport = {.kind = options.transport, .tls = options.tls, .provider = options.provider, .link = {}};
    mc.self = self;
    mc.poll_without_yield = poll;
    mc.thread_name = "ferry-client";
    FERRY_TRY(member, session::member::create(mc));
    discovery = std::make_unique<directory::discovery>(*router, *member);
    ifuncs = std::make_unique<ifunc::service>(*member, nodes, std::nullopt, link);
    member->on_frame([this](frame&& f) { on_frame(std::move(f)); });
    // A get's chunk goes from the transport's buffer to its call (and from
    // there into the caller's memory) without a copy into a frame first.
    member->on_data_frame([this](const frame& f, std::span<const std::uint8_t> data) {
      if (f.type == frame_type::object_data) (void)calls.complete(f.call, data, {});
    });
    member->on_peer_dead([this](node_index who) { on_peer_dead(who); });
    member->on_peer_alive([this](node_index who) {  // it was paused or busy, not gone
      std::lock_guard lock(mu);
      if (who < infos.size()) infos[who].alive = true;
    });
    member->on_load([this](node_index who, const wire::load_body& l) {  // with every heartbeat
      std::lock_guard lock(mu);
      if (who < infos.size())
        infos[who].load = node_load{l.queued, l.running, l.executors, l.call_us, l.load_permille,
                                    l.calls, l.pulled_calls, l.pulled_bytes, l.recompiling};
    });
    member->start();
    FERRY_TRY_STATUS(boot->publish(member->address()));
    FERRY_TRY(auto addresses, boot->node_addresses(options.join_timeout));
    for (node_index i = 0; i < nodes; ++i) {
      if (auto c = member->connect(i, addresses[i]); !c)
        return make_error(c.code(), fmt::format("node {} cannot be reached at the address it published (is it down? "
                                                "a client joins only when every node answers): {}",
                                                i, c.error().message()));
      FERRY_TRY_STATUS(result<void>(member->send(i, {frame_type::hello, self, kJoinHello, own_hello()})));
    }
    // Every node answers with its own hello once it can reach us. Its
    // answer, not a hello it sent on its own as it started: a node answers
    // only after its first writes to the others, and a node killed while
    // still writing into a peer's shared-memory FIFO leaves that peer deaf
    // (docs/transports.md, "A peer that dies").
    std::unique_lock lock(mu);
    const bool all = hello_cv.wait_for(lock, options.join_timeout, [&] {
      return std::find(answered.begin(), answered.end(), false) == answered.end();
    });
    if (!all) {
      std::vector<node_index> silent;
      for (node_index i = 0; i < nodes; ++i)
        if (!answered[i]) silent.push_back(i);
      return make_error(errc::timeout, fmt::format("node{} {} did not answer this client's hello within {} ms ({})",
                                                   silent.size() == 1 ? "" : "s", fmt::join(silent, ", "),
                                                   options.join_timeout.count(), boot->describe()));
    }
    ifunc::set_process_service(ifuncs.get());  // ferry_ifunc_context_create attaches here
    return {};
  }

  wire::hello_body own_hello() const { return {member->self(), 0xff, jit_target::host().triple, jit_target::host().cpu, member->address()}; }

  // Call states are reused: one whose future and table entry are gone (the
  // pool's is the only reference) is made new for the next call, so a warm
  // call allocates no state. The pool grows to the most calls in flight.
  std::vector<std::shared_ptr<detail::call_state>> pool;  // guarded by mu
  std::size_t pool_cursor = 0;

  std::shared_ptr<detail::call_state> fresh_state(std::chrono::steady_clock::time_point deadline,
                                                  std::span<std::uint8_t> answer_into = {}) {
    std::lock_guard lock(mu);
    return fresh_state_locked(deadline, answer_into);
  }
  std::shared_ptr<detail::call_state> fresh_state_locked(std::chrono::steady_clock::time_point deadline,
                                                         std::span<std::uint8_t> answer_into = {}) {
    for (std::size_t n = 0; n < pool.size(); ++n) {
      auto& s = pool[pool_cursor];
      pool_cursor = (pool_cursor + 1) % pool.size();
      if (s.use_count() == 1) {
        s->reuse(deadline, answer_into);
        return s;
      }
    }
    pool.push_back(std::make_shared<detail::call_state>(deadline, link, answer_into));
    return pool.back();
  }

  /// A new outstanding request whose answer completes a call_state (its
  /// bytes into `answer_into`, if given: detail::call_state).
  std::uint64_t start_call(calls::depends_on deps, std::chrono::milliseconds deadline,
                           std::shared_ptr<detail::call_state>& state, std::span<std::uint8_t> answer_into = {}) {
    state = fresh_state(std::chrono::steady_clock::now() + deadline, answer_into);
    return calls.add(deps, calls::completion_for(state));
  }

  /// ④ invoke, the send: this thread's invoke frame filled in place for
  /// `code` (its strings and vectors keep their capacity, so a warm call
  /// allocates nothing here), the code object pushed with the first frame
  /// to each node, then sent to `to`. The call's completion state. Calls
  /// and preloads (wire::kInvokeLoadOnly) alike.
  std::shared_ptr<detail::call_state> send_invoke(const code_object& code, node_index to, ref<void> target,
                                                  std::span<const std::uint8_t> args, std::uint8_t flags,
                                                  calls::depends_on deps, std::chrono::milliseconds deadline,
                                                  const placement_info& placed) {
    thread_local frame f{frame_type::invoke, 0, 0, wire::invoke_body{}};
    auto& b = std::get<wire::invoke_body>(f.body);
    b.code = code_registry::global().id_of(code);
    b.symbol.assign(code.symbol);
    b.signature_hash = code.signature_hash;
    b.origin = member->self();
    b.code_holder = member->self();
    const wire::call_clocks now = wire::read_call_clocks();  // one clock read for both deadlines
    b.deadline_us = now.deadline_us + static_cast<std::uint64_t>(deadline.count()) * 1000;
    b.target = target;
    b.args.assign(args.begin(), args.end());
    b.hops = 0;
    b.flags = flags;
    b.code_blob.clear();
    bool push = false;
    std::shared_ptr<detail::call_state> state;
    {
      std::lock_guard lock(mu);  // once for both: a warm call's locks are a good part of its cost
      push = pushed.insert({to, b.code}).second;
      state = fresh_state_locked(now.steady + deadline);
    }
    if (push) b.code_blob = code.encode();  // eager push, first frame only
    calls::completion done;
    if (placed.automatic) {  // ⑤ measured for the placement of the next calls
      const placement_inputs::measured_calls::place at{b.code, to, placed.choice == placement_info::how::pulled};
      measured->sent(at);
      done = calls::completion_for(std::make_shared<measured_answer>(
          measured_answer{state, measured, at, now.steady, push}));
    } else {
      done = calls::completion_for(state);
    }
    const auto call = calls.add(deps, std::move(done));
    b.origin_call = call;
    f.source = member->self();
    f.call = call;
    if (auto s = member->send(to, f); !s.ok()) (void)calls.complete(call, {}, std::move(s));
    // After the send, off the call's path: nobody reads these before the
    // caller has the state back (an answer writes only its bytes and status).
    requests.fetch_add(1, std::memory_order_relaxed);
    {
      auto& p = state->placed();
      p.choice = placed.choice;
      p.node = to;
      p.automatic = placed.automatic;
      p.reason.assign(placed.reason);  // into the reused state's string: a warm owner call allocates nothing
      p.estimate_us = placed.estimate_us;
      p.owner_estimate_us = placed.owner_estimate_us;
    }
    if (b.code_blob.capacity() > (std::size_t{1} << 20)) std::vector<std::uint8_t>().swap(b.code_blob);  // a big push
    return state;
  }

  void on_frame(frame&& f) {
    switch (f.type) {
      case frame_type::hello: {
        // From a node: it answers our hello, or it restarted (from itself, or
        // passed on by another node) and we must reconnect.
        const auto& h = std::get<wire::hello_body>(f.body);
        if (h.index >= nodes) return;
        const auto change = member->learn(h.index, h.address);
        if (!change) return;  // an address we cannot connect to
        const bool restarted = *change != session::member::change::unchanged;
        {
          std::lock_guard lock(mu);
          auto& info = infos[h.index];
          const std::uint32_t incarnation = info.incarnation + (restarted || info.incarnation == 0 ? 1 : 0);
          info = node_info{h.index, h.kind, h.triple, h.cpu, true, incarnation, member->transport_name(), info.load};
          if (f.call == kJoinHello && f.source == h.index) answered[h.index] = true;
          // Code pushed to the old process is gone with it: push again.
          if (restarted) std::erase_if(pushed, [&](const auto& p) { return p.first == h.index; });
        }
        if (restarted) router->forget_owner(h.index);  // ask the objects' homes again
        hello_cv.notify_all();
        // A restarted node does not know us yet (it answers with its hello).
        if (restarted) (void)member->send(h.index, {frame_type::hello, member->self(), 0, own_hello()});
        return;
      }
      case frame_type::reply:
      case frame_type::object_data:
      case frame_type::ack:
      case frame_type::error: (void)calls.answer(f); return;
      case frame_type::code_request:
        return code::serve_code_request(*member, f, [](const object_id& id, std::string_view symbol)
                                                        -> result<std::vector<std::uint8_t>> {
          auto co = id.is_nil() ? code_registry::global().find_symbol(std::string(symbol))
                                : code_registry::global().find_id(id);
          if (!co) return co.error();
          return (*co)->encode();
        });
      case frame_type::dir_register: {
        const auto& d = std::get<wire::dir_register_body>(f.body);
        if (f.call != 0) return discovery->on_answer(f.source, d);  // answers a dir_lookup of ours
        // A node passed our request on: go straight to the owner next time.
        redirects.fetch_add(1, std::memory_order_relaxed);
        return router->apply(d);
      }
      case frame_type::ifunc: return ifuncs->on_frame(std::move(f));
      default: return;  // clients ignore everything else
    }
  }

  void on_peer_dead(node_index who) {
    discovery->peer_dead(who);
    {
      std::lock_guard lock(mu);
      if (who < infos.size()) infos[who].alive = false;
    }
    calls.fail_peer(who, true, [this](const object_id& id) { return router->owner(id); },
                    make_error(errc::peer_dead, fmt::format("node {} stopped answering (heartbeat lost)", who)));
  }

  /// Send a request frame and return its completion state.
  /// `about`: the object the request is for. A node that passes it on
  /// tells us the next owner (a hint); if that node dies before it answers,
  /// the request fails then, not at its deadline.
  std::shared_ptr<detail::call_state> request(node_index to, frame&& f, std::chrono::milliseconds deadline,
                                              const object_id& about = {}) {
    return request(to, f, deadline, about);
  }
  /// The same for a frame the caller keeps (sets its call and source); a
  /// bulk frame's `data` travels after it (session::member::send); the
  /// answer's bytes land in `answer_into` if given (they must fill it).
  std::shared_ptr<detail::call_state> request(node_index to, frame& f, std::chrono::milliseconds deadline,
                                              const object_id& about = {}, std::span<const std::uint8_t> data = {},
                                              std::span<std::uint8_t> answer_into = {}) {
    std::shared_ptr<detail::call_state> state;
    f.call = start_call({to, about, wire::kNoNode, false}, deadline, state, answer_into);
    f.source = member->self();
    requests.fetch_add(1, std::memory_order_relaxed);
    if (auto s = member->send(to, f, data); !s.ok()) (void)calls.complete(f.call, {}, std::move(s));
    return state;
  }

  /// A waiting caller makes progress itself (detail::progress_driver).
  bool drive_once() override { return member->drive_once(); }
  bool drive_or_sleep(std::chrono::microseconds max) override { return member->drive_or_sleep(max); }

  /// Calls still pending when the runtime goes complete with errc::cancelled.
  void cancel_all() { calls.fail_all(make_error(errc::cancelled, "the ferry::runtime was destroyed")); }

  /// Where a request for `id` goes first: the router's rule (a client holds
  /// no objects and is no home, so under the home scheme there is always a
  /// next hop); under e2e an unknown owner is discovered first, waiting at
  /// most `limit`.
  result<node_index> owner_of(const object_id& id, std::chrono::milliseconds limit) {
    if (const auto next = discovery->next_hop_wait(id, limit)) return *next;
    return directory::discovery::nowhere(id);
  }

  /// request() to the owner of `id`; a failed state if it has none.
  std::shared_ptr<detail::call_state> request_owner(const object_id& id, frame&& f, std::chrono::milliseconds deadline) {
    return request_owner(id, f, deadline);
  }
  std::shared_ptr<detail::call_state> request_owner(const object_id& id, frame& f, std::chrono::milliseconds deadline,
                                                    std::span<const std::uint8_t> data = {},
                                                    std::span<std::uint8_t> answer_into = {}) {
    auto to = owner_of(id, deadline);
    if (!to) return failed(to.error());
    return request(*to, f, deadline, id, data, answer_into);
  }

  /// A bulk transfer of `bytes` with the owner of `id`, begun at `began`,
  /// has ended: what it says of the link (measured_links; the owner as this
  /// process knows it, if it does).
  void transferred(const object_id& id, std::uint64_t bytes, std::chrono::steady_clock::time_point began) {
    if (bytes < placement_inputs::measured_links::kMinBytes) return;
    const auto took = std::chrono::steady_clock::now() - began;
    if (const auto owner = router->owner(id)) links.transferred(*owner, bytes, took);
  }

  /// A call state that has already failed with `s`.
  static std::shared_ptr<detail::call_state> failed(status s) {
    auto st = std::make_shared<detail::call_state>(std::chrono::steady_clock::now());
    st->on_answer({}, std::move(s));
    return st;
  }
};

runtime::runtime(int, char**) : runtime(runtime_options::from_environment()) {}

runtime::runtime(runtime_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  if (auto s = impl_->join(); !s.ok()) throw error(s);
}

runtime::~runtime() {
  if (!impl_) return;
  impl_->link->close();  // threads still waiting on futures stop driving this runtime
  impl_->cancel_all();   // and wake with errc::cancelled
}

namespace detail {
status wait_result(call_state& s, void* out, std::size_t size) { return s.wait_into(out, size); }
bool is_ready(const call_state& s) noexcept { return s.ready(); }
placement_info placement_of(const call_state& s) { return s.placed(); }
}  // namespace detail

std::vector<node_info> runtime::nodes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->infos;
}

std::uint32_t runtime::member_index() const { return impl_->member->self(); }

runtime_stats runtime::stats() const {
  const auto& im = *impl_;
  return {im.requests.load(std::memory_order_relaxed),      im.redirects.load(std::memory_order_relaxed),
          im.discovery->lookups(),                          im.placed_owner.load(std::memory_order_relaxed),
          im.placed_pulled.load(std::memory_order_relaxed), im.placed_caller.load(std::memory_order_relaxed)};
}

void runtime::set_placement_policy(std::shared_ptr<placement_policy> policy) {
  if (!policy) throw error(make_error(errc::invalid_argument, "set_placement_policy: no policy"));
  std::lock_guard lock(impl_->mu);
  impl_->policy = std::move(policy);
}

std::shared_ptr<detail::call_state> runtime::invoke_raw(const void* fn, detail::native_entry native,
                                                        const call_options& options, ferry_ref route,
                                                        std::span<const std::uint8_t> args, std::size_t result_size) {
  auto fail = [](status s) { return impl::failed(std::move(s)); };
  auto co = code_registry::global().find(fn);
  if (!co) return fail(co.error());
  const code_object& code = **co;
  if (code.args_size != args.size() || code.result_size != result_size)
    return fail(make_error(errc::invalid_argument, fmt::format("call of {} does not match its code object's signature",
                                                               code.name)));
  const object_id target{route.id_hi, route.id_lo};
  node_index to;
  placement_info placed;
  if (options.node) {
    to = *options.node;
    placed.choice = placement_info::how::pinned;
  } else if (!target.is_nil()) {
    auto owner = impl_->owner_of(target, options.deadline);
    if (!owner) return fail(owner.error());
    to = *owner;
    if (options.placement == placement::automatic) {
      // ⑤ place: the policy chooses the owner, another node, or this process.
      auto d = impl_->place(code, code_registry::global().id_of(code), target, to, args.size());
      placed.automatic = true;
      placed.reason = std::move(d.reason);
      placed.estimate_us = d.estimate_us;
      placed.owner_estimate_us = d.owner_estimate_us;
      if (d.node == kCaller && native != nullptr) return run_here(fn, native, options, route, args, result_size, placed);
      if (d.node != kCaller && d.node != to) {
        to = d.node;
        placed.choice = placement_info::how::pulled;
      }
    }
  }
  else return fail(make_error(errc::invalid_argument,
                              fmt::format("{} has no ferry::ref argument: say where to run it with call_options::node",
                                          code.name)));
  if (to >= impl_->nodes)
    return fail(make_error(errc::invalid_argument, fmt::format("no node {} (the cluster has {})", to, impl_->nodes)));
  placed.node = to;

  const std::uint8_t flags = options.node                                       ? wire::kInvokePinned
                            : placed.choice == placement_info::how::pulled ? wire::kInvokePull
                                                                           : 0;
  // A call's fate follows its first hop and, unless pinned elsewhere, its target's owner.
  return impl_->send_invoke(code, to, ref<void>{target, route.offset}, args, flags,
                            {to, options.node ? object_id{} : target, wire::kNoNode, impl_->travels(code)},
                            options.deadline, placed);
}

std::shared_ptr<detail::call_state> runtime::preload_raw(const void* fn, std::uint32_t node,
                                                         const preload_options& options) {
  auto co = code_registry::global().find(fn);
  if (!co) return impl::failed(co.error());
  if (node >= impl_->nodes)
    return impl::failed(make_error(errc::invalid_argument,
                                   fmt::format("cannot preload {} on node {}: the cluster has {} nodes", (*co)->name,
                                               node, impl_->nodes)));
  placement_info placed;
  placed.choice = placement_info::how::pinned;
  placed.node = node;
  const std::uint8_t flags =
      wire::kInvokePinned | wire::kInvokeLoadOnly | (options.optimized ? wire::kInvokeOptimize : std::uint8_t{0});
  return impl_->send_invoke(**co, node, {}, {}, flags, {node, {}, wire::kNoNode, false}, options.deadline, placed);
}

std::shared_ptr<detail::call_state> runtime::run_here(const void* fn, detail::native_entry native,
                                                      const call_options& options, ferry_ref route,
                                                      std::span<const std::uint8_t> args, std::size_t result_size,
                                                      placement_info& placed) {
  auto& im = *impl_;
  // ⑧ in the caller: the function runs on this thread, on pulled copies.
  exec::caller_host host(
      im.member->self(),
      [&im, &options](const object_id& id, std::uint64_t offset, std::uint64_t length) {
        return im.request_owner(id, {frame_type::object_get, 0, 0, wire::object_get_body{{id, offset}, length}},
                                options.deadline)
            ->wait();
      },
      [this, &options](const void* callee, const ferry_ref& target, std::span<const std::uint8_t> a, void* out,
                       std::uint64_t out_size) {
        call_options nested;
        nested.deadline = options.deadline;
        return invoke_raw(callee, nullptr, nested, target, a, out_size)->wait_into(out, out_size);
      },
      [this](const object_id& id, std::uint32_t node) -> status {
        try {
          objects_.migrate_id(id, node);
          return {};
        } catch (const error& e) {
          return e.status();
        }
      });
  wire::invoke_body call;  // what the ABI may read of "the call": its deadline
  call.deadline_us = wire::deadline_clock_us() + static_cast<std::uint64_t>(options.deadline.count()) * 1000;
  call.target = ref<void>{object_id{route.id_hi, route.id_lo}, route.offset};
  exec::call_context cx;
  cx.host = &host;
  cx.call = &call;
  std::vector<std::uint8_t> result(result_size);
  const std::int32_t rc = exec::run_mobile(cx, native, fn, args.data(), result.data());
  placed.choice = placement_info::how::caller;
  placed.node = kCaller;
  std::shared_ptr<detail::call_state> state;
  if (rc == 0 && cx.forwarded) {
    // It continues elsewhere: that call's answer is this call's.
    const auto& next = host.forwarded();
    call_options onward;
    onward.deadline = options.deadline;
    state = invoke_raw(next.fn, nullptr, onward, next.target, next.args, result_size);
  } else {
    state = im.fresh_state(std::chrono::steady_clock::now() + options.deadline);
    if (rc != 0)
      state->on_answer({}, cx.failure.ok() ? make_error(static_cast<errc>(rc), "the call failed in the caller")
                                           : std::move(cx.failure));
    else
      state->on_answer(result, status{});
  }
  state->placed() = std::move(placed);
  return state;
}

// ---------------------------------------------------------------------------
// object_space

namespace {
constexpr std::chrono::milliseconds kObjectDeadline{30000};
}

object_id object_space::create_bytes(std::uint64_t size, std::uint32_t node) {
  auto& im = *rt_.impl_;
  if (node >= im.nodes)
    throw error(make_error(errc::invalid_argument, fmt::format("no node {} (the cluster has {})", node, im.nodes)));
  const object_id id = object_id::random();
  im.request(node, {frame_type::object_create, 0, 0, wire::object_create_body{id, size}}, kObjectDeadline)->wait().value();
  im.router->learn(id, node, 0);
  {
    std::lock_guard lock(im.mu);
    im.sizes[id] = size;  // what automatic placement would pull
  }
  return id;
}

void object_space::throw_too_large(std::uint64_t count, std::size_t size, const char* what) {
  throw error(make_error(errc::too_large, fmt::format("{} of {} elements of {} bytes: the size does not fit 64 bits",
                                                      what, count, size)));
}

namespace {
// Chunks of a large get/put in flight at once: enough to keep the link busy,
// few enough that the node holds at most this many chunks for one caller.
constexpr std::size_t kChunksInFlight = 4;

// Throws out_of_bounds when [offset, offset + length) does not fit 64 bits.
void check_fits(const char* what, std::uint64_t length, std::uint64_t offset) {
  if (length > ~std::uint64_t{0} - offset)
    throw error(make_error(errc::out_of_bounds, fmt::format("{} of {} bytes at offset {}: the range does not fit 64 bits",
                                                            what, length, offset)));
}

// Run `count` chunk requests, at most kChunksInFlight at a time; `start(i)`
// sends chunk i and returns its state (whose answer may land in the
// caller's memory: detail::call_state's answer_into). Throws the first error
// after the chunks already sent have finished, so none outlives the call
// and no answer lands in the caller's memory after it returns.
template <class Start>
void chunked(std::uint64_t count, Start start) {
  std::vector<std::pair<std::uint64_t, std::shared_ptr<detail::call_state>>> window;
  std::optional<status> failed;
  std::uint64_t next = 0;
  while (next < count || !window.empty()) {
    while (!failed && next < count && window.size() < kChunksInFlight) {
      try {
        window.emplace_back(next, start(next));
      } catch (...) {
        for (auto& [i, state] : window) (void)state->wait_view();
        throw;
      }
      ++next;
    }
    auto [i, state] = std::move(window.front());
    window.erase(window.begin());
    if (auto r = state->wait_view(); !r && !failed) failed = r.error();
    if (failed && window.empty()) break;
  }
  if (failed) throw error(*failed);
}
}  // namespace

void object_space::put_bytes(const object_id& id, std::uint64_t offset, std::span<const std::byte> bytes) {
  auto& im = *rt_.impl_;
  check_fits("put", bytes.size(), offset);
  const std::uint64_t chunks = bytes.empty() ? 1 : (bytes.size() + kChunk - 1) / kChunk;
  // One frame for every chunk; each chunk's bytes go from the caller's
  // memory straight to the transport, which copies them once
  // (session::member::send of a frame and its data).
  frame put{frame_type::object_put, 0, 0, wire::object_put_body{}};
  auto& body = std::get<wire::object_put_body>(put.body);
  const auto began = std::chrono::steady_clock::now();
  chunked(
      chunks,
      [&](std::uint64_t i) {
        const auto part = bytes.subspan(i * kChunk, std::min<std::uint64_t>(kChunk, bytes.size() - i * kChunk));
        body.at = {id, offset + i * kChunk};
        return im.request_owner(id, put, kObjectDeadline,
                                {reinterpret_cast<const std::uint8_t*>(part.data()), part.size()});
      });
  im.transferred(id, bytes.size(), began);
}

void object_space::check_range(const object_id& id, std::uint64_t offset, std::uint64_t length) {
  check_fits("get", length, offset);
  if (length > 0) {
    std::byte last;
    get_into(id, offset + length - 1, {&last, 1});
  }
}

std::vector<std::byte> object_space::get_bytes(const object_id& id, std::uint64_t offset, std::uint64_t length) {
  if (length > kChunk) check_range(id, offset, length);  // the node says whether the range exists first
  std::vector<std::byte> out;
  try {
    out.resize(length);
  } catch (const std::exception&) {
    throw error(make_error(errc::out_of_memory, fmt::format("cannot allocate {} bytes for a get", length)));
  }
  get_into(id, offset, out);
  return out;
}

void object_space::get_into(const object_id& id, std::uint64_t offset, std::span<std::byte> out) {
  auto& im = *rt_.impl_;
  const std::uint64_t length = out.size();
  check_fits("get", length, offset);
  const std::uint64_t chunks = length == 0 ? 1 : (length + kChunk - 1) / kChunk;
  const auto began = std::chrono::steady_clock::now();
  chunked(
      chunks,
      [&](std::uint64_t i) {
        // The chunk's answer is copied once, from the transport's frame
        // straight into `out` (a size other than n fails the get: bad_format).
        const std::uint64_t n = std::min<std::uint64_t>(kChunk, length - i * kChunk);
        frame ask{frame_type::object_get, 0, 0, wire::object_get_body{{id, offset + i * kChunk}, n}};
        return im.request_owner(id, ask, kObjectDeadline, {},
                                {reinterpret_cast<std::uint8_t*>(out.data()) + i * kChunk, n});
      });
  im.transferred(id, length, began);
}

void object_space::migrate_id(const object_id& id, std::uint32_t node) {
  auto& im = *rt_.impl_;
  if (node >= im.nodes)
    throw error(make_error(errc::invalid_argument, fmt::format("no node {} (the cluster has {})", node, im.nodes)));
  // The answer is the object's version at its new owner (its move count).
  const auto version = im.request_owner(id, {frame_type::object_migrate, 0, 0, wire::dir_register_body{id, node}},
                                        kObjectDeadline)
                           ->wait()
                           .value();
  std::uint64_t moves = 0;
  if (version.size() == 8) std::memcpy(&moves, version.data(), 8);
  im.router->learn(id, node, moves);
}

void object_space::remove_id(const object_id& id) {
  auto& im = *rt_.impl_;
  im.request_owner(id, {frame_type::object_remove, 0, 0, wire::object_remove_body{id}}, kObjectDeadline)
      ->wait()
      .value();
  im.router->forget(id);
  std::lock_guard lock(im.mu);
  im.sizes.erase(id);
}

}  // namespace ferry
