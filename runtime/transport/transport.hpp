// ⑥ transport: moves opaque frames between processes. Nothing above this
// header sees UCX (or libfabric) types.
//
// Contract (every backend):
//  * Serialized: one thread at a time uses a transport (the member's current
//    driver, session/member.hpp); handlers run on that thread, inside
//    progress(). The caller guarantees the exclusion and its memory ordering.
//  * Frames are delivered whole and in order per sender, or not at all. Large
//    frames use the backend's rendezvous path internally ("large-payload
//    receive"); the handler still sees one contiguous frame.
//  * Addresses are exchanged out of band (bootstrap: launcher file, PMIx,
//    host list), never through a listener: `address()` here, `connect()` there.
//  * Waiting: spin on progress() while there is work; when it returns 0 for a
//    while, `arm()` and, if it returns true, block on `event_fd()` (poll) —
//    wakeups are expensive here (2–80 µs), so spin first (docs/platform-notes.md).
//  * A frame larger than wire::kMaxFrame is dropped before a byte of it is
//    received (no buffer of the size a peer announces is allocated) and
//    counted in dropped_frames(); so is a malformed backend message.
//  * A dead peer may produce no error at all (UCX over shm): liveness is the
//    node's job (heartbeats), not the transport's.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::transport {

/// A connected peer, numbered by this transport in connect() order.
using peer_index = std::uint32_t;

/// The largest frame whose buffers are kept for the frames that follow: the
/// member's encode and decode buffers, a backend's send copies and
/// rendezvous receive buffers. One chunk of a chunked object transfer
/// (`object_space::kChunk`, 1 MiB of data) and its frame's fields fit.
/// Memory a process writes for the first time costs 10-15 us a page here,
/// about 20x writing it again (docs/platform-notes.md, "Memory"): a 1 MiB
/// chunk through fresh buffers at each step moved at ~80 MB/s. Larger frames
/// give their buffers back, so a thread does not keep the largest it saw.
inline constexpr std::size_t kReusedFrameBytes = std::size_t{2} << 20;
/// How many such buffers above 64 KiB a backend keeps for sends, and as many
/// for receives: the chunks of one transfer in flight at once.
inline constexpr std::size_t kSpareLargeBuffers = 4;

/// Memory a peer may read with get(): its address in the owner's address
/// space and the backend's packed access key. Plain bytes: travels in frames.
struct remote_region {
  std::uint64_t address = 0;
  std::uint64_t length = 0;
  std::vector<std::uint8_t> key;
};

/// Local memory registered for one-sided access; unregistered on destruction.
class registered_memory {
 public:
  virtual ~registered_memory() = default;
  /// What to send to a peer so it can get() from this memory.
  [[nodiscard]] virtual remote_region describe() const = 0;
};

struct options {
  /// "ucx" (default), "ofi" (libfabric) or "inproc" (unit tests: all
  /// endpoints in one process).
  std::string kind = "ucx";
  /// UCX transports to use ("shm", "tcp", "shm,tcp"...); empty: UCX_TLS from
  /// the environment, else UCX's own choice. Ignored by other kinds.
  std::string tls;
  /// libfabric provider ("tcp;ofi_rxm", "shm", "net"...); empty: FI_PROVIDER
  /// from the environment, else libfabric's first RDM provider that offers
  /// messages and RMA reads. Ignored by other kinds.
  std::string provider;
  /// The emulated link of this process (a device node's profile, see
  /// docs/devices.md). Zero and zero: no shaping, frames go straight to the
  /// backend. Otherwise every frame this process sends or receives waits
  /// until the link has carried it: `bytes_per_second` each way (0: no
  /// rate limit), then `latency` one way. So a round trip with a peer gains
  /// 2 x latency (+ 2 x size / rate); other peers' links are their own.
  /// This is ferry's own delay line because the kernel here has no netem;
  /// it is the one place latency is injected (shaped.cpp).
  struct link_profile {
    std::chrono::microseconds latency{0};
    std::uint64_t bytes_per_second = 0;
    [[nodiscard]] bool shaped() const { return latency.count() > 0 || bytes_per_second > 0; }
  } link;
};

/// A backend's address as it travels (bootstraps, hello frames): u8 n, the
/// n-byte backend name ("ucx", "ofi/shm", ...), then the backend's own
/// address bytes. connect() checks the name first, so a process started with
/// another transport (or libfabric provider) than the cluster gets
/// bad_format instead of handing foreign bytes to its library (UCX aborts
/// the process on a foreign address). Used by the UCX and libfabric backends.
std::vector<std::uint8_t> tag_address(std::string_view backend, std::span<const std::uint8_t> raw);
/// The backend's own bytes of `address`. Errors: bad_format (not tagged, or
/// tagged by another backend: the message names both).
result<std::span<const std::uint8_t>> untag_address(std::string_view backend, std::span<const std::uint8_t> address);

class transport {
 public:
  using frame_handler = std::function<void(std::span<const std::uint8_t> frame)>;

  /// A transport of the requested kind. Errors: unsupported (unknown kind),
  /// io_error (the backend failed to initialise; the message says why).
  static result<std::unique_ptr<transport>> create(const options& opts);

  virtual ~transport() = default;
  /// The backend and what it runs on: "ucx/shm", "ofi/tcp;ofi_rxm", "inproc".
  [[nodiscard]] virtual std::string name() const = 0;

  /// Bytes a peer passes to connect() to reach this transport.
  [[nodiscard]] virtual std::vector<std::uint8_t> address() const = 0;
  /// Connect to a peer by its address(). Errors: bad_format, io_error.
  virtual result<peer_index> connect(std::span<const std::uint8_t> address) = 0;

  /// The one handler of incoming frames (set before the first progress()).
  virtual void on_frame(frame_handler handler) = 0;
  /// Send a frame. The caller may reuse `frame`'s memory as soon as this
  /// returns: a backend sends small frames at once, and copies what cannot
  /// leave at once (large frames, or no resources right now) until it has.
  /// Errors: not_found (no such peer), peer_dead / io_error (send failed).
  virtual result<void> send(peer_index to, std::span<const std::uint8_t> frame) = 0;
  /// Send a frame given in two parts, `head` then `data` (a bulk frame
  /// encoded by wire::encode_head_into, its data left where it is): the
  /// peer receives the same bytes as from send() of the two joined, and the
  /// caller may reuse both as soon as this returns. By default the parts
  /// are joined into a buffer the thread keeps and sent; the UCX and
  /// libfabric backends copy a large frame's parts straight into the buffer
  /// they keep until it has left.
  virtual result<void> send_parts(peer_index to, std::span<const std::uint8_t> head,
                                  std::span<const std::uint8_t> data);
  /// Send the whole frame held in `frame`, whose buffer the backend may
  /// take: it then sends from it and leaves another in `frame` (one it kept
  /// from an earlier send, its memory warm, or an empty one; its contents
  /// and size are the backend's leftovers), so a large
  /// frame leaves without a copy. The peer receives the same bytes as from
  /// send(). By default send() (a copy), `frame` left as it is; the UCX
  /// backend takes large frames.
  virtual result<void> send_taking(peer_index to, std::vector<std::uint8_t>& frame) { return send(to, frame); }

  /// Make progress; returns how many events were handled (0 = idle).
  virtual unsigned progress() = 0;
  /// A descriptor that becomes readable when progress() has work.
  [[nodiscard]] virtual int event_fd() const = 0;
  /// Prepare to block on event_fd(); false means "events pending, progress
  /// again" (do not block).
  virtual bool arm() = 0;

  /// Incoming frames dropped by the backend: larger than wire::kMaxFrame,
  /// or a malformed backend message (a hostile or broken peer).
  [[nodiscard]] virtual std::uint64_t dropped_frames() const { return 0; }
  /// Empty while this process can receive; else why it never will again
  /// through this transport (UCX shm: a peer killed in the middle of a send
  /// left this process's receive queue half-written, docs/transports.md,
  /// "A peer that dies"). The driving thread calls it now and then (each
  /// heartbeat period), between progress() turns: it may probe, and says
  /// so only after seconds of progress without hearing.
  [[nodiscard]] virtual std::string deaf() { return {}; }
  /// Register local memory for peers' get().
  virtual result<std::unique_ptr<registered_memory>> register_memory(std::span<std::byte> memory) = 0;
  /// One-sided read of `into.size()` bytes at `offset` in a peer's region.
  /// Drives progress() until done (handlers may run meanwhile) or until
  /// `timeout_ms` passes (errc::timeout).
  virtual result<void> get(peer_index from, const remote_region& region, std::uint64_t offset, std::span<std::byte> into,
                           int timeout_ms) = 0;
};

/// Unit tests: the in-process endpoint at `address` hears nothing from now
/// on (frames sent to it are dropped) while its own sends still go out, and
/// its deaf() says so: what a UCX shm process whose receive queue a killed
/// sender left half-written goes through (transport::deaf()).
void deafen_inproc(std::span<const std::uint8_t> address);

}  // namespace ferry::transport
