// Host list: the bootstrap for several machines without a launcher
// (bootstrap.hpp). Entry i is HOST:PORT of data node i's bootstrap port:
//
//     # ferry cluster: node 0, 1, 2
//     10.0.0.1:7000
//     10.0.0.2:7000
//     [fd00::3]:7000
//
// Node i (`ferry node --hosts FILE --index i`) listens on PORT (every local
// address) and answers each request with its index, N and its transport
// address; node 0 also grants client member indices. Clients and the other
// nodes ask every entry, retrying until the node is up or their timeout
// passes. UCX then connects by worker address as in every mode (no UCX
// listener). The exchange is specified in docs/protocol.md and encoded in
// wire/bootstrap.hpp.
//
// Node 0 grants client indices N + k with k seeded from the clock (ms), so a
// restarted node 0 does not hand out the indices of clients still running.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::cluster {

struct host_entry {
  std::string host;  ///< name, IPv4 address, or IPv6 address (without brackets)
  std::uint16_t port = 0;
  /// HOST:PORT as written back (IPv6 in brackets).
  [[nodiscard]] std::string text() const;
  friend bool operator==(const host_entry&, const host_entry&) = default;
};

/// Parse a host list. `spec` names a file if one exists at that path (one
/// HOST:PORT per line; blank lines and `#` comments ignored), else it holds
/// the entries inline, separated by commas. Errors: bad_format (an entry that
/// is not HOST:PORT with a port in 1..65535; the message names its line or
/// position), invalid_argument (empty list, the same entry twice), io_error
/// (the file cannot be read).
result<std::vector<host_entry>> parse_host_list(std::string_view spec);

}  // namespace ferry::cluster
