#include "ofi_endpoint.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <type_traits>

#include <fmt/format.h>

namespace ferry::transport::ofi {
namespace {

// The shm provider backs each endpoint with a file in /dev/shm named after
// the endpoint, removed when the endpoint closes — but not when its process
// is killed.
constexpr const char* kShmDirectory = "/dev/shm";

// Removes the files of dead ferry processes, and, before this process has
// named any endpoint of its own, files that carry this process's pid (a dead
// process had it). Never a file of a live endpoint: a process's own names are
// swept only before its first one exists, so endpoints made concurrently by
// several runtimes in one process cannot unlink each other's files.
void remove_stale_shm_endpoints(bool own_pid_too) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kShmDirectory, ec)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    unsigned n = 0;
    char end = 0;
    if (std::sscanf(name.c_str(), "ferry-%d-%u%c", &pid, &n, &end) != 2 || pid <= 0) continue;
    const bool stale = pid == ::getpid() ? own_pid_too : ::kill(pid, 0) != 0 && errno == ESRCH;
    if (stale) std::filesystem::remove(entry.path(), ec);
  }
}

// The name of this process's next shm endpoint, "ferry-PID-N", after the
// sweep above.
std::string next_shm_endpoint_name() {
  static std::mutex mutex;
  static unsigned made = 0;
  std::lock_guard lock(mutex);
  remove_stale_shm_endpoints(made == 0);
  return fmt::format("ferry-{}-{}", ::getpid(), made++);
}

// libfabric is opened when the first endpoint opens, not linked
// (docs/transports.md, "libfabric is loaded on first use"). Debian's
// libfabric.so.1 needs the psm provider's libinfinipath.so.4, whose load-time
// constructor measures the CPU clock by sleeping (200 ms in every process
// that loads it) and installs SIGINT/SIGTERM handlers that call exit().
// The five functions below are all libfabric exports ferry calls; the rest of
// its API are inline calls through the objects' operation tables.
struct libfabric_exports {
  decltype(&::fi_getinfo) getinfo = nullptr;
  decltype(&::fi_freeinfo) freeinfo = nullptr;
  decltype(&::fi_dupinfo) dupinfo = nullptr;
  decltype(&::fi_fabric) fabric = nullptr;
  decltype(&::fi_strerror) strerror = nullptr;
};

constexpr const char* kLibfabric = "libfabric.so.1";

// The signals whose dispositions the load leaves as it found them:
// libinfinipath sets handlers for these and resets some to the default,
// which would undo a node's or a sanitizer's own.
constexpr std::array kKeptSignals = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

result<libfabric_exports> load_libfabric() {
  std::array<struct sigaction, kKeptSignals.size()> kept{};
  for (std::size_t i = 0; i < kKeptSignals.size(); ++i) ::sigaction(kKeptSignals[i], nullptr, &kept[i]);
  void* lib = ::dlopen(kLibfabric, RTLD_NOW | RTLD_LOCAL);
  for (std::size_t i = 0; i < kKeptSignals.size(); ++i) ::sigaction(kKeptSignals[i], &kept[i], nullptr);
  if (lib == nullptr)
    return make_error(errc::unsupported, fmt::format("libfabric cannot be loaded ({}): install libfabric1 "
                                                     "or use --transport ucx",
                                                     ::dlerror()));
  libfabric_exports x;
  // Each function's default version, the one linking against this library
  // would bind.
  const char* missing = nullptr;
  const auto bind = [lib, &missing](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
    if (fn == nullptr && missing == nullptr) missing = name;
  };
  bind(x.getinfo, "fi_getinfo");
  bind(x.freeinfo, "fi_freeinfo");
  bind(x.dupinfo, "fi_dupinfo");
  bind(x.fabric, "fi_fabric");
  bind(x.strerror, "fi_strerror");
  if (missing != nullptr) return make_error(errc::unsupported, fmt::format("{} has no {}", kLibfabric, missing));
  return x;  // the library stays loaded for the life of the process
}

// libfabric's exports, loaded once per process; the error of a failed load
// is kept and returned to every later caller.
const result<libfabric_exports>& libfabric() {
  static const result<libfabric_exports> loaded = load_libfabric();
  return loaded;
}

}  // namespace

status error(std::string_view what, long rc) {
  const int code = static_cast<int>(rc < 0 ? -rc : rc);
  return make_error(code == FI_ECONNREFUSED || code == FI_ENOTCONN || code == FI_ECONNRESET ? errc::peer_dead
                                                                                             : errc::io_error,
                    fmt::format("libfabric {}: {}", what, libfabric() ? std::string(libfabric()->strerror(code)) : fmt::format("error {}", code)));
}

endpoint::~endpoint() {
  close_endpoint();
  if (cq) fi_close(&cq->fid);
  if (av) fi_close(&av->fid);
  if (domain) fi_close(&domain->fid);
  if (fabric) fi_close(&fabric->fid);
  if (info) libfabric()->freeinfo(info);  // info is only set once libfabric is loaded
}

void endpoint::close_endpoint() {
  if (ep) fi_close(&ep->fid);
  ep = nullptr;
}

result<void> endpoint::open(const settings& s) {
  const auto& fi = libfabric();
  if (!fi) return fi.error();
  fi_info* hints = fi->dupinfo(nullptr);  // fi_allocinfo()
  if (hints == nullptr) return make_error(errc::out_of_memory, "fi_allocinfo");
  hints->ep_attr->type = FI_EP_RDM;
  hints->caps = s.caps;
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  hints->domain_attr->threading = FI_THREAD_DOMAIN;  // one thread at a time
  hints->domain_attr->resource_mgmt = FI_RM_ENABLED;
  if (!s.provider.empty()) hints->fabric_attr->prov_name = ::strdup(s.provider.c_str());
  const int rc = fi->getinfo(FI_VERSION(1, 17), nullptr, nullptr, 0, hints, &info);
  fi->freeinfo(hints);
  if (rc != 0)
    return make_error(errc::io_error, fmt::format("libfabric: no RDM provider{} with the capabilities asked for: {}",
                                                  s.provider.empty() ? std::string() : " '" + s.provider + "'",
                                                  fi->strerror(-rc)));
  if (auto r = fi->fabric(info->fabric_attr, &fabric, nullptr); r != 0) return error("fabric", r);
  if (auto r = fi_domain(fabric, info, &domain, nullptr); r != 0) return error("domain", r);
  fi_cq_attr cq_attr{};
  cq_attr.format = s.cq_format;
  cq_attr.size = info->rx_attr->size + info->tx_attr->size;
  cq_attr.wait_obj = s.wait_fd ? FI_WAIT_FD : FI_WAIT_NONE;
  if (s.wait_fd && fi_cq_open(domain, &cq_attr, &cq, nullptr) == 0) {
    if (auto r = fi_control(&cq->fid, FI_GETWAIT, &wait_fd); r != 0) return error("CQ wait fd", r);
  } else {
    cq_attr.wait_obj = FI_WAIT_NONE;  // shm has no wait object in libfabric 1.17
    if (auto r = fi_cq_open(domain, &cq_attr, &cq, nullptr); r != 0) return error("CQ", r);
  }
  fi_av_attr av_attr{};
  av_attr.type = FI_AV_TABLE;
  if (auto r = fi_av_open(domain, &av_attr, &av, nullptr); r != 0) return error("address vector", r);
  if (auto r = fi_endpoint(domain, info, &ep, nullptr); r != 0) return error("endpoint", r);
  if (auto r = fi_ep_bind(ep, &cq->fid, FI_TRANSMIT | FI_RECV); r != 0) return error("bind CQ", r);
  if (auto r = fi_ep_bind(ep, &av->fid, 0); r != 0) return error("bind AV", r);
  if (provider() == "shm") {
    const std::string name = next_shm_endpoint_name();
    if (auto r = fi_setname(&ep->fid, const_cast<char*>(name.c_str()), name.size() + 1); r != 0)
      return error("name endpoint", r);
  }
  if (auto r = fi_enable(ep); r != 0) return error("enable endpoint", r);
  return {};
}

std::string endpoint::provider() const { return info ? info->fabric_attr->prov_name : std::string(); }

result<std::vector<std::uint8_t>> endpoint::address(std::size_t at_most) const {
  std::size_t len = 0;
  fi_getname(&ep->fid, nullptr, &len);  // -FI_ETOOSMALL, with the size
  if (len == 0 || len > at_most) return make_error(errc::io_error, "libfabric: no endpoint address");
  std::vector<std::uint8_t> out(len);
  if (auto r = fi_getname(&ep->fid, out.data(), &len); r != 0) return error("endpoint address", r);
  out.resize(len);
  return out;
}

// Keys the provider picks (PROV_KEY) or unique keys we request; bound to the
// endpoint where the provider wants that (FI_MR_ENDPOINT).
result<fid_mr*> endpoint::register_region(void* base, std::size_t length, std::uint64_t access) {
  fid_mr* mr = nullptr;
  const std::uint64_t mr_mode = info->domain_attr->mr_mode;
  const std::uint64_t requested = (mr_mode & FI_MR_PROV_KEY) ? 0 : next_key_++;
  if (auto r = fi_mr_reg(domain, base, length, access, 0, requested, 0, &mr, nullptr); r != 0)
    return error(fmt::format("register {} bytes", length), r);
  if (mr_mode & FI_MR_ENDPOINT) {
    long r = fi_mr_bind(mr, &ep->fid, 0);
    if (r == 0) r = fi_mr_enable(mr);
    if (r != 0) {
      fi_close(&mr->fid);
      return error("bind memory registration", r);
    }
  }
  return mr;
}

std::uint64_t endpoint::remote_address(const void* base, std::uint64_t offset) const {
  return (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) ? reinterpret_cast<std::uint64_t>(base) + offset : offset;
}

// The process's one watchdog of stuck_call_watch: never destroyed (its
// thread may look at it while static destructors run at exit).
class watchdog {
 public:
  static watchdog& instance() {
    static watchdog* w = [] {
      auto* made = new watchdog;
      // fork() copies only the calling thread: a child starts a watchdog of
      // its own with its first endpoint (and the list's lock is not held in
      // it by a thread it does not have).
      ::pthread_atfork([] { instance().mu_.lock(); }, [] { instance().mu_.unlock(); },
                       [] {
                         instance().mu_.unlock();
                         instance().started_ = false;
                       });
      return made;
    }();
    return *w;
  }
  void add(stuck_call_watch* w) {
    std::lock_guard lock(mu_);
    watched_.push_back({w, 0, {}, false});
    if (!started_) {
      started_ = true;
      std::thread([this] { run(); }).detach();
    }
  }
  void remove(stuck_call_watch* w) {
    std::lock_guard lock(mu_);
    std::erase_if(watched_, [w](const entry& e) { return e.watch == w; });
  }

 private:
  struct entry {
    stuck_call_watch* watch;
    std::uint64_t entered;  ///< its count of calls entered when first seen inside one
    std::chrono::steady_clock::time_point since;
    bool inside;            ///< seen inside a call, and none entered since
  };

  void run() {
    const auto limit = stuck_call_watch::stuck_after();
    auto last_look = std::chrono::steady_clock::now();
    for (;;) {
      std::this_thread::sleep_for(kLookEvery);
      std::lock_guard lock(mu_);
      const auto now = std::chrono::steady_clock::now();
      // A look much later than asked for: this process was stopped (SIGSTOP,
      // a debugger) or not scheduled, and a call inside libfabric had no
      // chance to return meanwhile. Every call is watched afresh from now.
      const bool was_away = now - last_look > 2 * kLookEvery;
      last_look = now;
      for (auto& e : watched_) {
        const auto entered = e.watch->entered_.load(std::memory_order_relaxed);
        const auto left = e.watch->left_.load(std::memory_order_relaxed);
        if (entered == left) {
          e.inside = false;
        } else if (!e.inside || entered != e.entered || was_away) {  // inside a call it entered since the last look
          e = {e.watch, entered, now, true};
        } else if (now - e.since >= limit) {
          abort_stuck(*e.watch, limit);
        }
      }
    }
  }

  [[noreturn]] static void abort_stuck(const stuck_call_watch& w, std::chrono::seconds limit) {
    const auto message = fmt::format(
        "ferry: {} has been inside a libfabric call for {} s. libfabric 1.17's shm provider waits for ever on a "
        "lock that a peer killed while it was sending to this process (or to a process this one sends to) left "
        "held. This process can never communicate again: aborting, so that it can be restarted. "
        "docs/transports.md, \"A peer that dies\".\n",
        w.what_, limit.count());
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, message.data(), message.size());
    std::abort();
  }

  static constexpr std::chrono::seconds kLookEvery{1};

  std::mutex mu_;
  std::vector<entry> watched_;
  bool started_ = false;
};

stuck_call_watch::stuck_call_watch(std::string what) : what_(std::move(what)) { watchdog::instance().add(this); }
stuck_call_watch::~stuck_call_watch() { watchdog::instance().remove(this); }

std::chrono::seconds stuck_call_watch::stuck_after() {
  constexpr std::chrono::seconds kDefault{10};
  const char* set = std::getenv("FERRY_OFI_STUCK_SECONDS");
  if (!set) return kDefault;
  char* end = nullptr;
  const long v = std::strtol(set, &end, 10);
  if (end == set || *end != '\0' || v < 1 || v > 3600) {
    std::fprintf(stderr, "ferry: FERRY_OFI_STUCK_SECONDS=%s is not a whole number of seconds from 1 to 3600: using %lld\n",
                 set, static_cast<long long>(kDefault.count()));
    return kDefault;
  }
  return std::chrono::seconds(v);
}

}  // namespace ferry::transport::ofi
