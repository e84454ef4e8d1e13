// The baseline of `ferry bench invoke`: bare UCX active messages between the
// same two processes that later run ferry, with no ferry code on the path —
// one worker per process, one AM id, replies on the reply endpoint
// (UCP_AM_SEND_FLAG_REPLY), a single thread busy-polling on each side.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::bench {

class raw_am {
 public:
  /// A UCX context and worker using `tls` ("shm", "tcp"; empty: UCX's choice).
  static result<std::unique_ptr<raw_am>> create(const std::string& tls);
  ~raw_am();

  [[nodiscard]] std::vector<std::uint8_t> address() const;

  /// Server: answer every message with an 8-byte reply until the client
  /// sends stop(). Gives up after `idle_timeout_ms` without a message.
  result<void> serve(int idle_timeout_ms);

  /// Client side, against a serving peer at `address`.
  result<void> connect(std::span<const std::uint8_t> address);
  /// Median round trip (µs) over `batches` batches of `iterations` sends of
  /// `payload` bytes, each answered with 8 bytes.
  result<double> round_trip_us(std::size_t payload, int iterations, int batches);
  /// Messages per second of 8 bytes with up to `window` in flight.
  result<double> rate(int window, int total);
  /// Tell the server to stop serving.
  result<void> stop();

 private:
  raw_am() = default;
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace ferry::bench
