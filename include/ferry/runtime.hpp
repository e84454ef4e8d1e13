// ferry/runtime.hpp — joining a cluster, objects on nodes, invoke by reference.
//
//     ferry::runtime rt(argc, argv);               // joins the cluster it was launched into
//     auto table = rt.objects().create<std::uint64_t>(n, ferry::on_node(1));
//     rt.objects().put(table, std::span(values));
//     std::uint64_t v = rt.invoke(&chase, table, 0, 64).get();   // runs where `table` lives
//
// The process that constructs a `runtime` is a *client*: it holds no data
// and is not listed by nodes(); it takes a member index >= N so nodes can
// answer it. Data nodes are `ferry node` processes (started by `ferry launch`,
// `mpirun`, or by hand from a host list; README "Running a cluster").
//
// Errors: calls complete with a ferry::status (see status.hpp) — unknown
// code, missing object, object not local, dead peer, deadline exceeded, bad
// frame. `future::try_get()` returns it as a result; `future::get()` and the
// object API throw ferry::error, the runtime's one exception type. Every wait
// is bounded by the call's deadline (call_options::deadline).
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ferry/mobile.hpp>
#include <ferry/placement.hpp>
#include <ferry/ref.hpp>
#include <ferry/status.hpp>

namespace ferry {

/// Placement: put an object on data node `index` (0-based).
struct on_node {
  explicit on_node(std::uint32_t i) : index(i) {}
  std::uint32_t index;
};

/// A data node as the runtime sees it.
struct node_info {
  std::uint32_t id = 0;    ///< index in the cluster
  std::uint32_t kind = 0;  ///< FERRY_NODE_HOST / _DPU / _STORAGE
  std::string triple;      ///< target triple of its JIT
  std::string cpu;         ///< CPU its JIT generates code for ("cortex-a72", "znver3")
  /// False once its heartbeats stopped (calls to it fail with peer_dead)
  /// until it comes back.
  bool alive = false;
  /// Which process serves this index: 1 for the one this runtime joined, +1
  /// each time the node was restarted and said hello from a new address.
  /// Calls in flight to an earlier incarnation fail with peer_dead; code
  /// and objects it held in memory are gone (code is shipped again).
  std::uint32_t incarnation = 0;
  /// The transport this runtime reaches it over, with what that runs on:
  /// "ucx/shm", "ucx/tcp", "ofi/shm", "ofi/tcp;ofi_rxm" ("ucx" alone when
  /// UCX chose its transports).
  std::string transport;
  /// Its load as its last heartbeat reported it (every 100 ms): what
  /// automatic placement reads, and `ferry stats` prints.
  node_load load;
};

/// What reaching the data cost this runtime so far (runtime::stats()).
/// Each request is one message to the node this runtime believes owns its
/// object; a node that is not the owner passes it on and tells this runtime
/// the owner (a redirect: that request took one hop more). Under the e2e
/// directory scheme a request whose owner is unknown is preceded by a
/// lookup (one broadcast round trip). Round trips per request =
/// 1 + (redirects + lookups) / requests. docs/mobility.md.
struct runtime_stats {
  std::uint64_t requests = 0;   ///< calls and object operations sent
  std::uint64_t redirects = 0;  ///< owner hints received: requests passed on by a node that was not the owner
  std::uint64_t lookups = 0;    ///< owner discoveries (e2e scheme): every node asked, the owner answered
  /// Calls placed automatically (call_options::placement), by the choice made.
  std::uint64_t placed_owner = 0;   ///< run at the owner of their data
  std::uint64_t placed_pulled = 0;  ///< sent to another node, which pulled the data
  std::uint64_t placed_caller = 0;  ///< run in this process on pulled data
};

/// Per-call settings for invoke_with().
struct call_options {
  /// Run on this node instead of where the first ferry::ref argument lives.
  std::optional<std::uint32_t> node{};
  /// Give up (errc::timeout) if no answer arrives within this time.
  std::chrono::milliseconds deadline{30000};
  /// Where the call runs when `node` is not set: where its first ferry::ref
  /// argument lives (owner), or where the runtime's placement policy says
  /// (automatic; <ferry/placement.hpp>). future::where() tells which and why.
  ferry::placement placement = ferry::placement::owner;
};

/// Settings for runtime::preload().
struct preload_options {
  /// Give up (errc::timeout) if the node has not answered within this time.
  std::chrono::milliseconds deadline{30000};
  /// Answer once the code runs at the optimized tier on the node: compiled
  /// at the fast tier as a call would be, then recompiled with LLVM's O2
  /// before the future completes (at once if it already runs optimized).
  /// For code whose calls run long: a node compiles a first call's code at
  /// the fast tier and optimizes it only after 20 ms of runs or 1000 calls,
  /// so one long call runs at the fast tier throughout, 2-4x slower on
  /// tight loops (docs/jit.md, "Tiers"). Fails with unsupported on a node
  /// that never recompiles (jit hot_call_threshold 0), with compile_error
  /// if the recompile fails (the fast code keeps serving).
  bool optimized = false;
};

/// How a runtime joins its cluster. from_environment() is what
/// runtime(argc, argv) uses: FERRY_BOOTSTRAP, FERRY_RENDEZVOUS (set by
/// `ferry launch`), FERRY_HOSTS, FERRY_TRANSPORT (ucx | ofi | inproc), FERRY_TLS
/// (UCX: e.g. shm, tcp), FERRY_OFI_PROVIDER (libfabric: e.g. shm, tcp;ofi_rxm),
/// FERRY_DIRECTORY (home | e2e). Under PMIx, FERRY_NODES says how many ranks are data
/// nodes (default: the job's first app).
///
/// Which way to join: `bootstrap` if set (rendezvous | hosts | pmix); else
/// the rendezvous directory if given; else the host list if given; else PMIx
/// when the program runs under mpirun/srun (PMIX_RANK is set). README
/// "Running a cluster" shows each.
struct FERRY_API runtime_options {
  /// rendezvous | hosts | pmix; empty: chosen as above.
  std::string bootstrap;
  /// Rendezvous directory of a local cluster (`ferry launch` sets it).
  std::filesystem::path rendezvous;
  /// Host list: a file of HOST:PORT lines or "host:port,host:port,...";
  /// entry i is node i's bootstrap port.
  std::string hosts;
  /// ucx | ofi | inproc (docs/transports.md); every process of a cluster uses the same.
  std::string transport = "ucx";
  /// UCX transports (shm, tcp, ...); empty: UCX_TLS, else UCX's choice.
  std::string tls;
  /// How owners are found: "home" (a home node per object keeps its owner;
  /// the default) or "e2e" (owner caches, discovery by asking every node on
  /// a miss). The cluster's nodes must use the same (`ferry node
  /// --directory`; both read FERRY_DIRECTORY). docs/mobility.md.
  std::string directory = "home";
  /// libfabric provider (shm, tcp;ofi_rxm, net, ...); empty: FI_PROVIDER,
  /// else libfabric's first RDM provider.
  std::string provider;
  /// How fast this process runs mobile code, relative to a host node (2 =
  /// twice as fast). 0, the default: it never runs calls itself. Above 0,
  /// automatic placement may run a call here on pulled data
  /// (FERRY_CALLER_SPEED).
  double caller_speed = 0;
  /// How long to wait for every node to be reachable.
  std::chrono::milliseconds join_timeout{20000};
  static runtime_options from_environment();
};

namespace detail {

/// Completion state of one call, shared by its future and the runtime
/// (defined inside libferry).
class call_state;
/// Wait until `s` completes, at most until its call's deadline, and copy its
/// result into `out` (exactly `size` bytes; a result of another size is
/// errc::bad_format). A waiting thread first drives the runtime's progress
/// itself (answers often arrive within microseconds), then sleeps.
FERRY_API status wait_result(call_state& s, void* out, std::size_t size);
/// Has `s` completed?
FERRY_API bool is_ready(const call_state& s) noexcept;
/// Where the call of `s` was sent, and why.
FERRY_API placement_info placement_of(const call_state& s);

/// Run the host function `fn` (a `R (*)(context&, P...)`) on an argument
/// block: how a call that automatic placement keeps in the calling process
/// runs (runtime_options::caller_speed). 0 on success, like a code object's
/// entry.
using native_entry = std::int32_t (*)(const void* fn, ferry_context* cx, const void* args, void* result);
template <class R, class... P>
std::int32_t run_native(const void* fn, ferry_context* cx, const void* args, void* result) {
  auto* f = reinterpret_cast<R (*)(context&, P...)>(const_cast<void*>(fn));
  auto& c = *reinterpret_cast<context*>(cx);
  const auto* block = static_cast<const std::byte*>(args);
  auto arg = [block](auto tag, std::size_t offset) {  // trivially copyable: its bytes are the value
    using T = typename decltype(tag)::type;
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), block + offset, sizeof(T));
    return std::bit_cast<T>(raw);
  };
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    if constexpr (std::is_void_v<R>) {
      f(c, arg(std::type_identity<P>{}, arg_layout<P...>::offset(I))...);
    } else {
      const R r = f(c, arg(std::type_identity<P>{}, arg_layout<P...>::offset(I))...);
      std::memcpy(result, &r, sizeof r);
    }
  }(std::index_sequence_for<P...>{});
  return 0;
}

}  // namespace detail

/// The result of an invocation, available once the answer arrives.
template <class R>
class future {
 public:
  future() = default;
  explicit future(std::shared_ptr<detail::call_state> s) : s_(std::move(s)) {}

  /// Wait (at most until the call's deadline) and return the value or error.
  result<R> try_get() {
    if (!s_) return make_error(errc::invalid_argument, "empty ferry::future");
    if constexpr (std::is_void_v<R>) {
      if (auto st = detail::wait_result(*s_, nullptr, 0); !st.ok()) return st;
      return {};
    } else {
      R v;
      if (auto st = detail::wait_result(*s_, &v, sizeof(R)); !st.ok()) return st;
      return v;
    }
  }
  /// The value; throws ferry::error on failure.
  R get() {
    if constexpr (std::is_void_v<R>) try_get().value();
    else return try_get().value();
  }
  [[nodiscard]] bool ready() const { return s_ && detail::is_ready(*s_); }
  /// Where the call was sent, and why (placement_info; the reason is set
  /// for automatically placed calls).
  [[nodiscard]] placement_info where() const { return s_ ? detail::placement_of(*s_) : placement_info{}; }

 private:
  std::shared_ptr<detail::call_state> s_;
};

class runtime;

/// Objects on data nodes, by reference. Throws ferry::error on failure
/// (unknown id -> not_found, out of range -> out_of_bounds, dead node ->
/// peer_dead, no answer -> timeout).
class FERRY_API object_space {
 public:
  /// A new object holding `count` zero-initialised Ts on node `where`.
  /// Throws errc::too_large if `count * sizeof(T)` does not fit 64 bits;
  /// the node answers errc::out_of_memory when it cannot hold the object.
  template <class T>
  ref<T> create(std::uint64_t count, on_node where) {
    static_assert(std::is_trivially_copyable_v<T>, "objects hold trivially copyable data");
    return ref<T>{create_bytes(byte_size<T>(count, "create"), where.index), 0};
  }
  template <class T>
  void put(ref<T> at, std::span<const std::type_identity_t<T>> values) {
    put_bytes(at.id, at.offset, std::as_bytes(values));
  }
  /// `count` Ts from `at`. Large reads travel in chunks (see get_bytes).
  template <class T>
  std::vector<T> get(ref<T> at, std::uint64_t count) {
    const std::uint64_t bytes = byte_size<T>(count, "get");
    if (bytes > kChunk) check_range(at.id, at.offset, bytes);  // before this process allocates it
    std::vector<T> out(count);
    get_into(at.id, at.offset, std::as_writable_bytes(std::span(out)));
    return out;
  }
  /// `out.size()` Ts from `at`, into a buffer the caller owns. Reading into
  /// the same buffer again and again is the fast way to stream an object:
  /// memory a process writes for the first time costs far more than memory
  /// it has written before (about 20x on the VMs ferry is measured on).
  template <class T>
  void get(ref<T> at, std::span<std::type_identity_t<T>> out) {
    static_assert(std::is_trivially_copyable_v<T>, "objects hold trivially copyable data");
    get_into(at.id, at.offset, std::as_writable_bytes(out));
  }
  template <class T>
  void remove(ref<T> at) {
    remove_id(at.id);
  }
  /// Move the object `at` names to node `where`, byte for byte (its ptrs
  /// stay valid: its FOT moves with it). Returns once the new owner holds it
  /// (durably, for a persistent store) and the old one has dropped it.
  /// Calls and object operations in flight meanwhile complete exactly once:
  /// the ones that reached the old owner first run there before the copy,
  /// the others are passed on to the new owner. If the destination fails or
  /// dies first, the object stays where it was and this throws (peer_dead,
  /// out_of_memory, timeout...). docs/mobility.md, "Migration".
  template <class T>
  void migrate(ref<T> at, on_node where) {
    migrate_id(at.id, where.index);
  }

  object_id create_bytes(std::uint64_t size, std::uint32_t node);
  /// Writes and reads larger than kChunk travel as several requests of at
  /// most kChunk bytes (a few in flight at once): any size works, and a
  /// node's memory for one request stays bounded. Each chunk of a put is
  /// durable when acknowledged; a put that fails part-way may have written
  /// some chunks (the error says which range failed).
  static constexpr std::uint64_t kChunk = std::uint64_t{1} << 20;
  void put_bytes(const object_id& id, std::uint64_t offset, std::span<const std::byte> bytes);
  std::vector<std::byte> get_bytes(const object_id& id, std::uint64_t offset, std::uint64_t length);
  /// `out.size()` bytes from `offset` into `out`, in chunks like get_bytes.
  void get_into(const object_id& id, std::uint64_t offset, std::span<std::byte> out);
  void remove_id(const object_id& id);
  void migrate_id(const object_id& id, std::uint32_t node);

 private:
  /// count * sizeof(T), or throw errc::too_large when it does not fit 64 bits.
  template <class T>
  static std::uint64_t byte_size(std::uint64_t count, const char* what) {
    if (count > ~std::uint64_t{0} / sizeof(T)) throw_too_large(count, sizeof(T), what);
    return count * sizeof(T);
  }
  [[noreturn]] static void throw_too_large(std::uint64_t count, std::size_t size, const char* what);
  /// Throws what a get of the range would (not_found, out_of_bounds, ...),
  /// asking its last byte: before a large read allocates its result.
  void check_range(const object_id& id, std::uint64_t offset, std::uint64_t length);

  friend class runtime;
  explicit object_space(runtime& rt) : rt_(rt) {}
  runtime& rt_;
};

class FERRY_API runtime {
 public:
  /// Join the cluster this program was launched into (see runtime_options).
  /// Throws ferry::error if there is none or it cannot be reached.
  runtime(int argc, char** argv);
  explicit runtime(runtime_options options);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  object_space& objects() { return objects_; }
  /// The data nodes (this client is not one of them).
  [[nodiscard]] std::vector<node_info> nodes() const;
  /// This process's member index (>= number of nodes).
  [[nodiscard]] std::uint32_t member_index() const;
  /// Requests sent and redirects seen (see runtime_stats).
  [[nodiscard]] runtime_stats stats() const;
  /// The policy automatic placement asks (default: a ferry::cost_model).
  /// Any thread; calls already placed keep their node.
  void set_placement_policy(std::shared_ptr<placement_policy> policy);

  /// Run `fn` where its first ferry::ref argument lives.
  template <class R, class... P, class... A>
  future<R> invoke(R (*fn)(context&, P...), A&&... args) {
    return invoke_with(call_options{}, fn, std::forward<A>(args)...);
  }
  /// Run `fn` with explicit options (node, deadline).
  template <class R, class... P, class... A>
  future<R> invoke_with(const call_options& options, R (*fn)(context&, P...), A&&... args) {
    static_assert(std::is_trivially_copyable_v<R> || std::is_void_v<R>, "mobile results are trivially copyable");
    std::array<std::uint8_t, detail::arg_layout<P...>::size()> block{};  // on the stack: nothing to allocate
    detail::pack_args<P...>(reinterpret_cast<std::byte*>(block.data()), args...);
    ferry_ref route{};
    if constexpr ((detail::is_ref<P>::value || ...)) route = detail::routing_ref(static_cast<P>(args)...);
    std::size_t result_size = 0;
    if constexpr (!std::is_void_v<R>) result_size = sizeof(R);
    return future<R>(invoke_raw(reinterpret_cast<const void*>(fn), &detail::run_native<R, P...>, options, route, block,
                                result_size));
  }

  /// Ship `fn`'s code object to node `where` and have the node check,
  /// compile and link it now, without running it: a later call of `fn`
  /// there (sent, forwarded or nested) finds its code resident and skips
  /// the ship and the compile, milliseconds of a cold first call. Use it
  /// before a timed region, or while data loads, on every node a call may
  /// reach (docs/jit.md, "Preloading"). The future completes once the node
  /// holds the compiled code; it fails as the call would (unsigned_code,
  /// policy_violation, no_matching_variant, peer_dead, timeout...). A node
  /// that restarts loses the code again.
  template <class R, class... P>
  future<void> preload(R (*fn)(context&, P...), on_node where,
                       std::chrono::milliseconds deadline = std::chrono::milliseconds{30000}) {
    return preload(fn, where, preload_options{deadline});
  }
  /// The same with options: `optimized` for code whose calls run long.
  template <class R, class... P>
  future<void> preload(R (*fn)(context&, P...), on_node where, const preload_options& options) {
    return future<void>(preload_raw(reinterpret_cast<const void*>(fn), where.index, options));
  }

  struct impl;

 private:
  friend class object_space;
  std::shared_ptr<detail::call_state> invoke_raw(const void* fn, detail::native_entry native, const call_options& options,
                                                 ferry_ref route,
                                                 std::span<const std::uint8_t> args, std::size_t result_size);
  std::shared_ptr<detail::call_state> preload_raw(const void* fn, std::uint32_t node, const preload_options& options);
  /// A call automatic placement keeps in this process (runtime_options::caller_speed).
  std::shared_ptr<detail::call_state> run_here(const void* fn, detail::native_entry native, const call_options& options,
                                               ferry_ref route, std::span<const std::uint8_t> args,
                                               std::size_t result_size, placement_info& placed);
  std::unique_ptr<impl> impl_;
  object_space objects_{*this};
};

}  // namespace ferry
