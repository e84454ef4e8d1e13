// The pointer chase's baselines, on bare UCX in server processes of their own
// (no ferry code on their path):
//   am   a chase handler compiled ahead of time into every server (the
//        pre-deployed Active Message): it follows the chase through its shard
//        and sends it on to the server holding the next entry; the last one
//        answers the client.
//   get  the client chases alone with one-sided 8-byte UCX gets from the
//        server holding each entry (the servers only make progress).
//   ifunc the same walk shipped as a UCX ifunc (xchase.c) through ferry's
//        compat API (libferry_ucp_ifunc, docs/ifunc.md) on the same workers:
//        it sends itself on from inside xchase_main, and to the client at
//        the end (`ferry bench ifunc`).
// Servers and client find each other through files in a shared directory.
// While a baseline is measured, both busy-poll, and yield the CPU when idle
// if the processes outnumber the cores (as ferry does, docs/architecture.md
// "Waiting"); while another mode is measured the client parks the servers:
// they block in the kernel until it unparks them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ferry/status.hpp>

namespace chase_raw {

/// Busy-polling processes (`shards` servers and a client) that outnumber the
/// cores starve each other (a message waits for its receiver's next time
/// slice, milliseconds): then an idle waiting process yields its core, as a
/// real AM runtime would.
bool oversubscribed(std::uint32_t shards);

/// A server: holds shard `index` of `shards`, answers until the client says
/// stop (or, while not parked, nothing arrives for `idle_timeout_ms`); with
/// `ifunc`, it also polls for xchase ifunc messages (not while parked).
ferry::result<void> serve(const std::filesystem::path& dir, const std::string& tls, std::uint32_t index,
                          std::uint32_t shards, std::vector<std::uint64_t> slots, bool ifunc, int idle_timeout_ms);

/// The client's side of both baselines.
class client {
 public:
  /// Connect to the `shards` servers publishing in `dir`.
  static ferry::result<std::unique_ptr<client>> connect(const std::filesystem::path& dir, const std::string& tls,
                                                        std::uint32_t shards, bool ifunc);
  ~client();
  /// One chase with the pre-deployed handler; returns its endpoint.
  ferry::result<std::uint64_t> chase_am(std::uint64_t start, std::uint32_t depth);
  /// One chase by the xchase ifunc (needs `ifunc` at connect); returns its endpoint.
  ferry::result<std::uint64_t> chase_ifunc(std::uint64_t start, std::uint32_t depth);
  /// One chase by gets; returns its endpoint.
  ferry::result<std::uint64_t> chase_get(std::uint64_t start, std::uint32_t depth);
  /// Park every server (they sleep until unparked: other modes run), or
  /// unpark them (they poll: a baseline runs). Servers start unparked.
  ferry::result<void> park(bool parked);
  /// Stop every server.
  ferry::result<void> stop();

 private:
  client() = default;
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace chase_raw
