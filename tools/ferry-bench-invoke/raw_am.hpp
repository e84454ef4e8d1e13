// The baseline of `ferry bench invoke`: bare messages between the client and
// a raw server process beside the `ferry node`, with no ferry code on the
// path — one endpoint per process, a single thread busy-polling on each side
// while a batch runs, every request answered with 8 bytes. Two backends, like ferry's transports:
//   UCX (raw_ucx.cpp): active messages, one AM id, replies on the reply
//     endpoint (UCP_AM_SEND_FLAG_REPLY);
//   libfabric (raw_ofi.cpp): FI_MSG sends into pre-posted receive buffers
//     (fi_inject when the message fits), an FI_EP_RDM endpoint.
// The loops (ping-pong, windowed rate, bulk stream, serving) are written
// once, here.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::bench {

class raw_am {
 public:
  /// `kind` "ucx" with `tls` ("shm", "tcp"; empty: UCX's choice), or "ofi"
  /// with `provider` ("shm", "tcp;ofi_rxm"; empty: libfabric's choice).
  static result<std::unique_ptr<raw_am>> create(const std::string& kind, const std::string& tls,
                                                const std::string& provider);
  virtual ~raw_am() = default;

  [[nodiscard]] virtual std::vector<std::uint8_t> address() const = 0;

  /// Server: answer every message with an 8-byte reply until the client
  /// sends stop(). Gives up after `idle_timeout_ms` without a message.
  /// Idle for more than a millisecond, it polls only every millisecond, so
  /// that it leaves the cores to ferry's processes between the client's batches
  /// (a batch's untimed lead-in brings it back to busy polling).
  result<void> serve(int idle_timeout_ms);

  /// Client side, against a serving peer at `address`.
  virtual result<void> connect(std::span<const std::uint8_t> address) = 0;
  /// Median round trip (µs) over `batches` batches of `iterations` sends of
  /// `payload` bytes, each answered with 8 bytes.
  result<double> round_trip_us(std::size_t payload, int iterations, int batches);
  /// Mean round trip (µs) over one batch of `iterations` such sends, timed
  /// after `lead_in` untimed ones.
  result<double> batch_us(std::size_t payload, int iterations, int lead_in);
  /// Messages per second of `payload` bytes (8 by default) with up to
  /// `window` in flight, each answered with 8 bytes.
  result<double> rate(int window, int total, std::size_t payload = 8);
  /// Bytes per second of a bulk transfer done by hand: `source` sent in
  /// `slice`-byte messages, up to `window` in flight, each received into
  /// its place in one array of the server's as large as `source` (UCX:
  /// received there by rendezvous; libfabric: fi_read there by the
  /// server), each answered with 8 bytes. What an object put does with the
  /// same bytes, without ferry.
  result<double> stream(std::span<const std::uint8_t> source, std::size_t slice, int window);
  /// Tell the server to stop serving. Its answer is digest() of its array
  /// of slices as the last stream left it (0 before any stream).
  result<std::uint64_t> stop();
  /// A digest of `bytes` (order-sensitive; not cryptographic): what stop()
  /// answers, to check that a stream put every slice in its place.
  static std::uint64_t digest(std::span<const std::uint8_t> bytes);

 protected:
  enum class kind : std::uint8_t { ping = 0, stop = 1, slice = 2 };
  /// Where a slice goes in the server's array of `total` bytes (`{}`: zeros).
  struct place {
    std::uint64_t offset;
    std::uint64_t total;
  };
  /// Client: a request of `length` bytes at `data` to the server (a slice:
  /// to go at `at`).
  virtual result<void> send_request(kind k, const void* data, std::size_t length, place at = {}) = 0;
  /// What a request other than stop is answered with.
  static constexpr std::uint64_t kDone = 0x600d;
  /// Server: an 8-byte answer, `value`, to the sender of a request (as the
  /// backend identifies it): kDone, or the stop's digest.
  virtual result<void> answer(std::uint64_t to, std::uint64_t value) = 0;
  /// Drive the backend; count answers (client) or queue whom to answer
  /// (server) with the members below. Returns how many events it handled.
  virtual unsigned progress() = 0;

  /// Client: an answer came, saying `value`.
  void took_answer(std::uint64_t value) {
    ++answers_;
    last_answer_ = value;
  }
  /// Server: a request of kind `k` from `to` is done; answer it (a stop
  /// with the digest of the slices' array, anything else with kDone).
  void queue_answer(std::uint64_t to, kind k);

  std::uint64_t answers_ = 0;  // client: answers received
  bool stop_ = false;          // server: the client said stop

  /// Server: where `length` bytes of a slice go (the array grows to the
  /// slice's `total` at a stream's first slice, when none is in flight), or
  /// null (said on stderr) when they would not fit in it: the slice is then
  /// answered without being put in place, and stop()'s digest shows it.
  std::uint8_t* slice_destination(place at, std::size_t length);

 private:
  result<void> wait_answers(std::uint64_t target);
  struct pending_answer {
    std::uint64_t to, value;
  };
  std::deque<pending_answer> to_answer_;  // server: requests not yet answered
  std::uint64_t last_answer_ = 0;         // client: what the last answer said
  std::vector<std::uint8_t> payload_;
  std::vector<std::uint8_t> sink_;  // server: where slices go
};

result<std::unique_ptr<raw_am>> make_raw_ucx(const std::string& tls);
result<std::unique_ptr<raw_am>> make_raw_ofi(const std::string& provider);

}  // namespace ferry::bench
