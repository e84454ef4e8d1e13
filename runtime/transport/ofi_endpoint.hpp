// One libfabric FI_EP_RDM endpoint and what it stands on (fabric, domain,
// completion queue, address vector), opened and closed the way every
// libfabric user in ferry needs: ferry's transport (ofi.cpp) and the bare
// libfabric baseline of `ferry bench invoke` (tools/ferry-bench-invoke/
// raw_ofi.cpp), which must run plain libfabric calls on its measured path:
// this is setup, registration and teardown only.
//
// Every MR mode is handled here (FI_MR_PROV_KEY or unique requested keys,
// FI_MR_VIRT_ADDR, FI_MR_LOCAL, FI_MR_ENDPOINT), and shm endpoints are
// named "ferry-PID-N" so that files a killed process leaves in /dev/shm are
// removed by the next ferry shm endpoint on the machine (docs/transports.md).
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::transport::ofi {

/// A failed libfabric call: peer_dead for refused or reset connections,
/// io_error otherwise; "libfabric <what>: <libfabric's words>".
status error(std::string_view what, long rc);

class endpoint {
 public:
  struct settings {
    std::string provider;             ///< empty: libfabric's first choice
    std::uint64_t caps = FI_MSG;      ///< FI_MSG, FI_RMA, FI_READ...
    fi_cq_format cq_format = FI_CQ_FORMAT_CONTEXT;
    bool wait_fd = false;             ///< a CQ wait fd where the provider has one
  };

  endpoint() = default;
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;
  /// Closes what is open: the endpoint (unless close_endpoint() did), the
  /// CQ, the AV, the domain, the fabric.
  ~endpoint();

  /// Find a provider (io_error naming it if none fits), open everything,
  /// name the endpoint (shm), enable it.
  result<void> open(const settings& s);
  /// Close the endpoint first: afterwards the provider touches none of the
  /// buffers it was given, which may then be released before the rest.
  void close_endpoint();

  /// The provider's name ("shm", "tcp;ofi_rxm"...).
  [[nodiscard]] std::string provider() const;
  /// The endpoint's address, for a peer's fi_av_insert.
  [[nodiscard]] result<std::vector<std::uint8_t>> address(std::size_t at_most) const;
  /// Register memory for `access` (FI_RECV, FI_SEND, FI_READ, FI_REMOTE_READ).
  result<fid_mr*> register_region(void* base, std::size_t length, std::uint64_t access);
  /// Where a peer's fi_read names byte `offset` of a region registered at `base`.
  [[nodiscard]] std::uint64_t remote_address(const void* base, std::uint64_t offset) const;

  fi_info* info = nullptr;
  fid_fabric* fabric = nullptr;
  fid_domain* domain = nullptr;
  fid_cq* cq = nullptr;
  fid_av* av = nullptr;
  fid_ep* ep = nullptr;
  int wait_fd = -1;  ///< the CQ's wait fd, or -1 (the provider has none, or not asked)

 private:
  std::uint64_t next_key_ = 1;
};

/// Calls into libfabric that never return. libfabric 1.17's shm provider
/// takes a spin lock in the receiver's shared region for every send, and the
/// receiver takes the same lock to progress. A process killed while it held
/// one (while it sent) leaves that lock held for good: the receiver spins
/// inside libfabric for ever, and so does every process that then sends to
/// it (docs/transports.md, "A peer that dies"). A transport counts the
/// libfabric calls it enters and leaves (a guard around each, with what it
/// runs of its own inside one, frame handlers, marked `outside`); a watchdog
/// thread, one per process, looks every second, and a call that has not
/// returned for stuck_after() ends the process with SIGABRT and a message
/// that says why. Such a process can never communicate again; one that
/// aborts can be restarted and frees its core, one that spins cannot.
class stuck_call_watch {
 public:
  /// Watched from now on; `what` names the transport in the message.
  explicit stuck_call_watch(std::string what);
  ~stuck_call_watch();
  stuck_call_watch(const stuck_call_watch&) = delete;
  stuck_call_watch& operator=(const stuck_call_watch&) = delete;

  /// Counts one of the two counters when made and the other when gone.
  class counted_scope {
   public:
    counted_scope(std::atomic<std::uint64_t>& first, std::atomic<std::uint64_t>& then) : then_(then) {
      first.fetch_add(1, std::memory_order_relaxed);
    }
    ~counted_scope() { then_.fetch_add(1, std::memory_order_relaxed); }
    counted_scope(const counted_scope&) = delete;
    counted_scope& operator=(const counted_scope&) = delete;

   private:
    std::atomic<std::uint64_t>& then_;
  };
  /// Inside a libfabric call while it lives (nests).
  struct guard : counted_scope {
    explicit guard(stuck_call_watch& w) : counted_scope(w.entered_, w.left_) {}
  };
  /// Out of the libfabric call while it lives, inside a guard: what the
  /// transport runs from within one that is not libfabric's (a frame
  /// handler, which may run a mobile call in place for as long as it takes).
  struct outside : counted_scope {
    explicit outside(stuck_call_watch& w) : counted_scope(w.left_, w.entered_) {}
  };

  /// How long a call may go without returning: 10 s, or
  /// FERRY_OFI_STUCK_SECONDS (1 to 3600) when the environment sets it.
  static std::chrono::seconds stuck_after();

 private:
  friend class watchdog;
  std::atomic<std::uint64_t> entered_{0}, left_{0};
  std::string what_;
};

}  // namespace ferry::transport::ofi
