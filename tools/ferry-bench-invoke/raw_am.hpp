// The baseline of `ferry bench invoke`: bare messages between the client and
// a raw server process beside the `ferry node`, with no ferry code on the
// path — one endpoint per process, a single thread busy-polling on each side
// while a batch runs, every request answered with 8 bytes. Two backends, like ferry's transports:
//   UCX (raw_ucx.cpp): active messages, one AM id, replies on the reply
//     endpoint (UCP_AM_SEND_FLAG_REPLY);
//   libfabric (raw_ofi.cpp): FI_MSG sends into pre-posted receive buffers
//     (fi_inject when the message fits), an FI_EP_RDM endpoint.
// The loops (ping-pong, windowed rate, serving) are written once, here.
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
  /// Tell the server to stop serving.
  result<void> stop();

 protected:
  enum class kind : std::uint8_t { ping = 0, stop = 1 };
  /// Client: a request of `length` bytes at `data` to the server.
  virtual result<void> send_request(kind k, const void* data, std::size_t length) = 0;
  /// Server: an 8-byte answer to the sender of a request (as the backend
  /// identifies it).
  virtual result<void> answer(std::uint64_t to) = 0;
  /// Drive the backend; count answers (client) or queue whom to answer
  /// (server) with the members below. Returns how many events it handled.
  virtual unsigned progress() = 0;

  std::uint64_t answers_ = 0;            // client: answers received
  std::deque<std::uint64_t> to_answer_;  // server: requests not yet answered
  bool stop_ = false;                    // server: the client said stop

 private:
  result<void> wait_answers(std::uint64_t target);
  std::vector<std::uint8_t> payload_;
};

result<std::unique_ptr<raw_am>> make_raw_ucx(const std::string& tls);
result<std::unique_ptr<raw_am>> make_raw_ofi(const std::string& provider);

}  // namespace ferry::bench
