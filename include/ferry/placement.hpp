// ferry/placement.hpp — where a call runs when the system decides (⑤ place).
//
//     auto f = rt.invoke_with(ferry::call_options{.placement = ferry::placement::automatic}, &infer, model, x);
//     auto v = f.get();
//     ferry::placement_info why = f.where();   // e.g. node 2, pulled: "owner 1 has 14 calls queued ..."
//
// By default a call runs where its first ferry::ref argument lives. With
// placement::automatic the runtime asks its placement policy, which sees
// every node's load (reported with the heartbeats nodes send anyway), the
// links, the size of the data and of the code, whether each node holds the
// code already, and how long this process's recent calls of the function
// took to answer where it sent them, and picks one of:
//   - the owner of the data (as by default);
//   - another node: the call is sent there and every cx.local of an object
//     held elsewhere pulls a private copy of the range (writes to it stay in
//     the call: use automatic placement for calls that only read the data
//     they are routed by);
//   - the caller itself, when runtime_options::caller_speed says it runs
//     mobile code: the function runs in the calling thread on pulled copies.
// The default policy is cost_model; runtime::set_placement_policy() installs
// another. docs/mobility.md, "Placement", has the formula.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <ferry/export.h>

namespace ferry {

/// How a call's node is chosen (call_options::placement).
enum class placement : std::uint8_t {
  owner,      ///< where its first ferry::ref argument lives (the default)
  automatic,  ///< the runtime's placement policy chooses (see above)
};

/// placement_candidate::node / placement_decision::node of the calling process.
inline constexpr std::uint32_t kCaller = 0xffffffffu;

/// A node's load as its last heartbeat reported it (node_info::load).
struct node_load {
  std::uint32_t queued = 0;         ///< mobile calls waiting for an executor
  std::uint32_t running = 0;        ///< mobile calls running on executors
  std::uint32_t executors = 0;      ///< its executor threads
  std::uint32_t call_us = 0;        ///< mean run time of its recent mobile calls, µs (0: none yet)
  std::uint32_t load_permille = 0;  ///< 1-minute load average per core, x1000
  std::uint64_t calls = 0;          ///< mobile calls it ran
  std::uint64_t pulled_calls = 0;   ///< of those, calls placement sent it to run on pulled data
  std::uint64_t pulled_bytes = 0;   ///< bytes those calls pulled
  /// Code objects its JIT is recompiling optimized in the background (hot
  /// code; docs/jit.md, "Tiers"): until 0, their calls run the fast tier and
  /// the compiles take CPU time. Benchmarks wait for 0 before they measure.
  std::uint32_t recompiling = 0;
};

/// What moving bytes to or from a place costs, as the policy estimates it.
struct link_figures {
  double latency_us = 0;    ///< one message, one way
  double bytes_per_us = 0;  ///< bandwidth (1000 = 1 GB/s)
};

/// One place a call could run.
struct placement_candidate {
  std::uint32_t node = kCaller;  ///< node index, or kCaller
  std::uint32_t kind = 0;        ///< FERRY_NODE_HOST / _DPU / _STORAGE
  bool alive = true;
  bool owner = false;     ///< it holds the data the call is routed by
  bool has_code = false;  ///< it holds the call's code compiled (the caller always does)
  node_load load;         ///< the caller: zeros
  /// Between the caller and it: the bandwidth this process measured of
  /// its own bulk transfers there (object gets and puts of 256 KiB and
  /// more), else the figure assumed from the transport; the latency assumed.
  link_figures link;
  /// What this process measured there: the mean time to the answer of the
  /// function's recent calls that automatic placement sent there, in µs
  /// (0: none answered in the last kObservedForMs; the caller's own runs
  /// are not measured).
  double observed_us = 0;
  /// Calls of the function that automatic placement sent there are still
  /// on their way (their answers will give observed_us).
  bool observing = false;
};

/// How long a measured time to the answer counts (placement_candidate::observed_us).
inline constexpr std::uint32_t kObservedForMs = 1000;

/// Everything a policy is told about one call.
struct placement_input {
  std::string_view function;                  ///< the mobile function's name
  std::uint32_t owner = kCaller;              ///< node holding the data it is routed by
  std::optional<std::uint64_t> object_bytes;  ///< that object's size, when this process knows it
  std::uint64_t code_bytes = 0;               ///< encoded code object
  std::uint64_t args_bytes = 0;
  double caller_speed = 0;                    ///< runtime_options::caller_speed
  /// Every node (owner included), then the caller if caller_speed > 0.
  std::span<const placement_candidate> candidates;
};

/// A policy's answer.
struct placement_decision {
  std::uint32_t node = kCaller;  ///< a candidate's node (or kCaller)
  std::string reason;            ///< one line: why there
  double estimate_us = 0;        ///< estimated time to the answer there
  double owner_estimate_us = 0;  ///< the same at the owner
};

/// Chooses where an automatically placed call runs. Called on the invoking
/// thread for every such call: keep it quick and thread-safe.
class FERRY_API placement_policy {
 public:
  virtual ~placement_policy();
  virtual placement_decision choose(const placement_input& in) = 0;
};

/// The default policy: estimated time to the answer at each candidate (the
/// measured one where there is one, else a model of it, and for a place that
/// would pull no less than the fastest measured place that pulled), the
/// cheapest wins, and another place than the owner only if it beats the
/// owner by `margin`; while another place is measured and the owner is not,
/// one call goes to the owner to measure it (docs/mobility.md, "Placement").
class FERRY_API cost_model final : public placement_policy {
 public:
  struct parameters {
    double compile_us = 3000;       ///< shipping aside, JIT-compiling a code object a node lacks
    double default_call_us = 20;    ///< a call's run time when no node has reported one
    double dpu_slowdown = 4;        ///< a DPU node runs host-speed code this many times slower
    double storage_slowdown = 2;    ///< the same for a storage node
    double margin = 0.8;            ///< leave the owner only for at most this fraction of its estimate
  };
  cost_model() = default;
  explicit cost_model(parameters p) : p_(p) {}
  placement_decision choose(const placement_input& in) override;
  /// The estimate for one candidate (µs); `why` gets its terms.
  [[nodiscard]] double estimate(const placement_input& in, const placement_candidate& c, std::string* why) const;

 private:
  parameters p_;
};

/// Where a call was sent, and why (future::where()).
struct placement_info {
  enum class how : std::uint8_t {
    owner,   ///< to the owner of its data (default placement, or the policy chose it)
    pinned,  ///< to call_options::node
    pulled,  ///< the policy sent it to another node, which pulls the data
    caller,  ///< the policy ran it in the calling process on pulled data
  };
  how choice = how::owner;
  std::uint32_t node = kCaller;  ///< node it was sent to; kCaller when it ran here
  bool automatic = false;        ///< decided by the placement policy
  std::string reason;            ///< the policy's reason (empty unless automatic)
  double estimate_us = 0;        ///< the policy's estimate for its choice
  double owner_estimate_us = 0;  ///< and for the owner
};

/// "owner", "pinned", "pulled", "caller".
FERRY_API const char* to_string(placement_info::how h) noexcept;

}  // namespace ferry
