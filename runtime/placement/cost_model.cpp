// ⑤ place: the default placement policy, a cost model. The formula is
// stated once, here, and in docs/mobility.md ("Placement").
#include "placement/cost_model.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <limits>

#include <ferry/ferry.h>
#include <fmt/format.h>

namespace ferry {

placement_policy::~placement_policy() = default;

const char* to_string(placement_info::how h) noexcept {
  switch (h) {
    case placement_info::how::owner: return "owner";
    case placement_info::how::pinned: return "pinned";
    case placement_info::how::pulled: return "pulled";
    case placement_info::how::caller: return "caller";
  }
  return "?";
}

namespace {
constexpr double kUnreachable = std::numeric_limits<double>::infinity();

std::string where(std::uint32_t node) { return node == kCaller ? std::string("caller") : fmt::format("node {}", node); }

const placement_candidate* owner_of(const placement_input& in) {
  for (const auto& c : in.candidates)
    if (c.owner) return &c;
  return nullptr;
}

double transfer_us(const link_figures& l, double bytes) {
  return l.latency_us + (l.bytes_per_us > 0 ? bytes / l.bytes_per_us : 0);
}

// The fastest measured time of a call that ran elsewhere than the owner, on
// pulled data (0: none measured).
double fastest_measured_pull(const placement_input& in) {
  double fastest = 0;
  for (const auto& c : in.candidates)
    if (!c.owner && c.alive && c.observed_us > 0 && (fastest == 0 || c.observed_us < fastest)) fastest = c.observed_us;
  return fastest;
}
}  // namespace

// estimate = observed + code where this process measured the function's
// recent calls (placement_candidate::observed_us: it includes whatever the
// model cannot see, such as a node running a short call in place instead of
// behind its executors' queue); elsewhere a model of it,
// estimate = send + code + pull + queue + run, in µs:
//   send  = 2 x latency + args / bandwidth          (invoke and reply; 0 at the caller)
//   code  = code bytes / bandwidth + compile_us     (0 where the code is compiled already)
//   pull  = 2 x latency + object bytes / bandwidth  (0 at the owner; the slower of the
//                                                     candidate's and the owner's link)
//   queue = max(0, queued + running - executors + 1) x its call_us / executors
//   run   = base / speed x L(candidate) / L(owner)  (base: the owner's call_us, else
//                                                     default_call_us, measured under the
//                                                     owner's load; L = max(1, load per core);
//                                                     speed: caller_speed at the caller,
//                                                     1 / slowdown of its kind)
// and a place that pulls is estimated at no less than the fastest measured
// place that pulled (+ its own code): the data comes from the same owner,
// whose load and network thread the pull term cannot see (a pull of 1 MiB
// modelled at 0.3 ms took 15-37 ms from a saturated owner).
double cost_model::estimate(const placement_input& in, const placement_candidate& c, std::string* why) const {
  if (!c.alive) {
    if (why) *why = "not alive";
    return kUnreachable;
  }
  const bool caller = c.node == kCaller;
  const placement_candidate* own = owner_of(in);
  const double code = c.has_code ? 0 : transfer_us(c.link, static_cast<double>(in.code_bytes)) + p_.compile_us;
  if (c.observed_us > 0) {
    if (why) *why = fmt::format("{:.0f} us = measured {:.0f} + code {:.0f}", c.observed_us + code, c.observed_us, code);
    return c.observed_us + code;
  }
  const double send = caller ? 0 : c.link.latency_us + transfer_us(c.link, static_cast<double>(in.args_bytes));
  double pull = 0;
  if (!c.owner) {
    if (!in.object_bytes || !own) {
      if (why) *why = "the size or owner of the data is unknown here: cannot pull it";
      return kUnreachable;
    }
    const link_figures slow{std::max(c.link.latency_us, own->link.latency_us),
                            std::min(c.link.bytes_per_us > 0 ? c.link.bytes_per_us : own->link.bytes_per_us,
                                     own->link.bytes_per_us > 0 ? own->link.bytes_per_us : c.link.bytes_per_us)};
    pull = slow.latency_us + transfer_us(slow, static_cast<double>(*in.object_bytes));
  }
  const double base = own && own->load.call_us > 0 ? own->load.call_us : p_.default_call_us;
  const double own_call = c.load.call_us > 0 ? c.load.call_us : base;
  const double executors = std::max<double>(1, c.load.executors);
  const double backlog = static_cast<double>(c.load.queued) + c.load.running - executors + 1;
  const double queue = caller ? 0 : std::max(0.0, backlog) * own_call / executors;
  double speed = 1;
  if (caller) speed = in.caller_speed;
  else if (c.kind == FERRY_NODE_DPU) speed = 1 / p_.dpu_slowdown;
  else if (c.kind == FERRY_NODE_STORAGE) speed = 1 / p_.storage_slowdown;
  if (speed <= 0) {
    if (why) *why = "does not run mobile code";
    return kUnreachable;
  }
  // call_us is wall time measured at the owner, under the owner's load: scale
  // it by how much more (or less) loaded the candidate is.
  auto load = [](const placement_candidate& x) { return std::max(1.0, x.load.load_permille / 1000.0); };
  const double run = base / speed * (own ? load(c) / load(*own) : 1.0);
  const double total = send + code + pull + queue + run;
  if (why)
    *why = fmt::format("{:.0f} us = send {:.0f} + code {:.0f} + pull {:.0f} + queue {:.0f} + run {:.0f}", total, send,
                       code, pull, queue, run);
  if (const double measured = c.owner ? 0 : fastest_measured_pull(in); measured + code > total) {
    if (why)
      *why = fmt::format("{:.0f} us = another place's measured pull {:.0f} + code {:.0f} (modelled: {})", measured + code,
                         measured, code, *why);
    return measured + code;
  }
  return total;
}

placement_decision cost_model::choose(const placement_input& in) {
  placement_decision d;
  const placement_candidate* own = owner_of(in);
  std::string own_why;
  d.owner_estimate_us = own ? estimate(in, *own, &own_why) : kUnreachable;
  d.node = own ? own->node : kCaller;
  d.estimate_us = d.owner_estimate_us;
  const placement_candidate* best = own;
  std::string best_why;
  for (const auto& c : in.candidates) {
    if (&c == own) continue;
    std::string why;
    const double e = estimate(in, c, &why);
    if (e < d.estimate_us) {
      d.estimate_us = e;
      best = &c;
      best_why = std::move(why);
    }
  }
  if (!own) {
    d.reason = "no owner known: the call goes where it is routed";
    return d;
  }
  // Measured places are compared with a model of the others; a model of the
  // owner may be far off (it cannot tell a call that runs in place from one
  // that waits behind the queue). So while another place is measured and
  // the owner is not, and no call is on its way there, this call goes to
  // the owner and measures it.
  const bool other_measured = std::any_of(in.candidates.begin(), in.candidates.end(),
                                          [own](const placement_candidate& c) { return &c != own && c.observed_us > 0; });
  if (best != own && own->alive && own->observed_us == 0 && !own->observing && other_measured) {
    d.reason = fmt::format("owner node {}: not measured in the last {} ms, this call measures it ({}); best other, {}: {}",
                           own->node, kObservedForMs, own_why, where(best->node), best_why);
    d.estimate_us = d.owner_estimate_us;
    return d;
  }
  if (best != own && std::isfinite(d.owner_estimate_us) && d.estimate_us > p_.margin * d.owner_estimate_us) {
    d.reason = fmt::format("owner node {}: {}; best other, {}: {} (not {:.0f}% better)", own->node, own_why,
                           where(best->node), best_why, (1 - p_.margin) * 100);
    d.estimate_us = d.owner_estimate_us;
    return d;
  }
  if (best == own) {
    d.reason = fmt::format("owner node {}: {}", own->node, own_why);
    return d;
  }
  d.node = best->node;
  d.reason = fmt::format("{}: {}; owner node {}: {}", where(best->node), best_why, own->node, own_why);
  return d;
}

namespace placement_inputs {

link_figures for_transport(std::string_view transport, std::uint32_t kind) {
  // One-way latency of a small frame and bandwidth of large ones, from the
  // figures in docs/mobility.md ("Placement") and README (UCX, libfabric).
  if (kind == FERRY_NODE_DPU) return {50, 125};  // a slow emulated DPU link: 1 Gbit/s, tens of µs (measured_links corrects it)
  if (transport.find("shm") != std::string_view::npos) return {2, 4000};
  if (transport.find("tcp") != std::string_view::npos || transport.find("net") != std::string_view::npos)
    return {15, 1000};
  return {5, 2000};  // UCX chose its transports
}

// Read /proc/loadavg at most once a second (a 1-minute average moves slowly):
// nodes report it with every heartbeat from their network thread, and a
// caller's automatic placement asks for it on each call.
std::uint32_t machine_load_permille() {
  static const long cores = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  static std::atomic<std::int64_t> read_at_ms{-1000};
  static std::atomic<std::uint32_t> cached{0};
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
  if (now_ms - read_at_ms.load(std::memory_order_relaxed) < 1000) return cached.load(std::memory_order_relaxed);
  read_at_ms.store(now_ms, std::memory_order_relaxed);
  double avg = 0;
  if (::getloadavg(&avg, 1) != 1) return cached.load(std::memory_order_relaxed);
  const auto permille = static_cast<std::uint32_t>(std::min(avg / static_cast<double>(cores) * 1000.0, 1e9));
  cached.store(permille, std::memory_order_relaxed);
  return permille;
}

}  // namespace placement_inputs
}  // namespace ferry
