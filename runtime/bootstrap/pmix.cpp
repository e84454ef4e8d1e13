// PMIx bootstrap: under mpirun / srun the launcher numbers the processes and
// its PMIx server exchanges the addresses (bootstrap.hpp).
//
//   mpirun -np N ferry node : -np 1 PROGRAM
//
// Ranks 0..N-1 are the data nodes (node i = rank i) — the job's first app,
// or the first FERRY_NODES / --nodes ranks — and the ranks after them are
// clients (member index = rank). Every process Puts its transport address
// under "ferry.address", Commits and Fences (collecting data); then Gets are
// local. The cluster lives as long as the job: nodes enter a second Fence at
// once and stop when it completes, which is when every client has left (its
// runtime was destroyed).
#include <pmix.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "bootstrap.hpp"

namespace ferry::cluster {
namespace {

constexpr const char* kAddressKey = "ferry.address";

status pmix_error(std::string_view what, pmix_status_t rc) {
  return make_error(rc == PMIX_ERR_TIMEOUT ? errc::timeout : errc::io_error,
                    fmt::format("PMIx {}: {}", what, PMIx_Error_string(rc)));
}

result<std::uint32_t> get_u32(const pmix_proc_t& proc, const char* key) {
  pmix_value_t* v = nullptr;
  if (const pmix_status_t rc = PMIx_Get(&proc, key, nullptr, 0, &v); rc != PMIX_SUCCESS)
    return pmix_error(fmt::format("get {} of rank {}", key, proc.rank), rc);
  std::uint32_t out = 0;
  pmix_status_t rc;
  PMIX_VALUE_GET_NUMBER(rc, v, out, std::uint32_t);
  PMIX_VALUE_RELEASE(v);
  if (rc != PMIX_SUCCESS) return pmix_error(fmt::format("{} of rank {} is not a number", key, proc.rank), rc);
  return out;
}

class pmix_bootstrap final : public bootstrap {
 public:
  explicit pmix_bootstrap(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  ~pmix_bootstrap() override {
    if (initialized_) PMIx_Finalize(nullptr, 0);
  }

  status init(bootstrap_role role, const bootstrap_options& options) {
    if (const pmix_status_t rc = PMIx_Init(&me_, nullptr, 0); rc != PMIX_SUCCESS)
      return make_error(errc::unsupported,
                        fmt::format("PMIx_Init failed ({}): this process was not started by a PMIx launcher (mpirun, "
                                    "srun --mpi=pmix). Outside one, use `ferry launch`, a rendezvous directory or a "
                                    "host list",
                                    PMIx_Error_string(rc)));
    initialized_ = true;
    pmix_proc_t job;
    PMIX_LOAD_PROCID(&job, me_.nspace, PMIX_RANK_WILDCARD);
    FERRY_TRY(const std::uint32_t size, get_u32(job, PMIX_JOB_SIZE));
    std::optional<std::uint32_t> asked = options.nodes;
    if (const char* env = std::getenv("FERRY_NODES"); !asked && env != nullptr) {
      std::uint32_t n = 0;
      const char* end = env + std::strlen(env);
      if (auto [p, err] = std::from_chars(env, end, n); err != std::errc{} || p != end)
        return make_error(errc::invalid_argument, fmt::format("FERRY_NODES='{}' is not a number of nodes", env));
      asked = n;
    }
    if (asked) {
      if (*asked == 0 || *asked >= size)
        return make_error(errc::invalid_argument,
                          fmt::format("{} data nodes asked for (FERRY_NODES / --nodes) in a job of {} processes: "
                                      "at least one node and one client are needed",
                                      *asked, size));
      nodes_ = *asked;
    } else {
      // The job's first app: ranks are numbered app by app.
      for (nodes_ = 0; nodes_ < size; ++nodes_) {
        pmix_proc_t p;
        PMIX_LOAD_PROCID(&p, me_.nspace, nodes_);
        FERRY_TRY(const std::uint32_t app, get_u32(p, PMIX_APPNUM));
        if (app != 0) break;
      }
      if (nodes_ == size)
        return make_error(errc::invalid_argument,
                          fmt::format("the PMIx job has {} processes and no client: start the program as a second app "
                                      "(mpirun -np {} ferry node : -np 1 PROGRAM), or say how many ranks are nodes "
                                      "(FERRY_NODES)",
                                      size, size));
    }
    const bool is_node = me_.rank < nodes_;
    if (role == bootstrap_role::node && !is_node)
      return make_error(errc::invalid_argument,
                        fmt::format("rank {} runs `ferry node` but ranks {}.. are clients: put `ferry node` first on "
                                    "the mpirun command line (mpirun -np N ferry node : -np 1 PROGRAM)",
                                    me_.rank, nodes_));
    if (role == bootstrap_role::client && is_node)
      return make_error(errc::invalid_argument,
                        fmt::format("rank {} is a client but ranks 0..{} are the data nodes: start the program after "
                                    "`ferry node` (mpirun -np N ferry node : -np 1 PROGRAM)",
                                    me_.rank, nodes_ - 1));
    if (options.index && *options.index != me_.rank)
      return make_error(errc::invalid_argument,
                        fmt::format("--index {} given, but under PMIx this node is rank {}", *options.index, me_.rank));
    return {};
  }

  std::string describe() const override { return fmt::format("pmix {} rank {}", me_.nspace, me_.rank); }
  std::uint32_t nodes() const override { return nodes_; }
  node_index self() const override { return me_.rank; }

  result<void> publish(std::span<const std::uint8_t> address) override {
    pmix_value_t v;
    PMIX_VALUE_CONSTRUCT(&v);
    v.type = PMIX_BYTE_OBJECT;
    v.data.bo.bytes = const_cast<char*>(reinterpret_cast<const char*>(address.data()));
    v.data.bo.size = address.size();
    if (const pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, kAddressKey, &v); rc != PMIX_SUCCESS)
      return pmix_error("put", rc);
    if (const pmix_status_t rc = PMIx_Commit(); rc != PMIX_SUCCESS) return pmix_error("commit", rc);
    // Everyone publishes, then one fence makes every address available locally.
    pmix_info_t info[2];
    bool collect = true;
    int seconds = static_cast<int>(std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(timeout_).count()));
    PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
    PMIX_INFO_LOAD(&info[1], PMIX_TIMEOUT, &seconds, PMIX_INT);
    const pmix_status_t rc = PMIx_Fence(nullptr, 0, info, 2);
    PMIX_INFO_DESTRUCT(&info[0]);
    PMIX_INFO_DESTRUCT(&info[1]);
    if (rc != PMIX_SUCCESS) return pmix_error("fence (not every process of the job published its address)", rc);
    published_ = true;
    return {};
  }

  result<std::vector<std::vector<std::uint8_t>>> node_addresses(std::chrono::milliseconds) override {
    if (!published_) return make_error(errc::internal, "PMIx: node addresses are only known after publish()");
    std::vector<std::vector<std::uint8_t>> out(nodes_);
    for (node_index i = 0; i < nodes_; ++i) {
      pmix_proc_t p;
      PMIX_LOAD_PROCID(&p, me_.nspace, i);
      pmix_value_t* v = nullptr;
      if (const pmix_status_t rc = PMIx_Get(&p, kAddressKey, nullptr, 0, &v); rc != PMIX_SUCCESS)
        return pmix_error(fmt::format("get the address of node {}", i), rc);
      if (v->type == PMIX_BYTE_OBJECT && v->data.bo.size > 0) {
        const auto* b = reinterpret_cast<const std::uint8_t*>(v->data.bo.bytes);
        out[i].assign(b, b + v->data.bo.size);
      }
      PMIX_VALUE_RELEASE(v);
      if (out[i].empty()) return make_error(errc::bad_format, fmt::format("PMIx: rank {} published no address", i));
    }
    return out;
  }

  std::vector<std::pair<node_index, std::vector<std::uint8_t>>> clients() const override { return {}; }
  bool job_scoped() const override { return true; }

  result<void> leave() override {
    // Not published: this process never took part (its join failed), and a
    // fence now would pair with the others' publishing fence.
    if (left_ || !published_) return {};
    left_ = true;
    if (const pmix_status_t rc = PMIx_Fence(nullptr, 0, nullptr, 0); rc != PMIX_SUCCESS)
      return pmix_error("fence (leaving the job)", rc);
    return {};
  }

 private:
  std::chrono::milliseconds timeout_;
  pmix_proc_t me_{};
  bool initialized_ = false;
  std::uint32_t nodes_ = 0;
  bool published_ = false;
  bool left_ = false;
};

}  // namespace

namespace detail {

result<std::unique_ptr<bootstrap>> open_pmix(bootstrap_role role, const bootstrap_options& options) {
  auto b = std::make_unique<pmix_bootstrap>(options.timeout);
  if (auto s = b->init(role, options); !s.ok()) return s;
  return std::unique_ptr<bootstrap>(std::move(b));
}

}  // namespace detail

}  // namespace ferry::cluster
