// ferry-test-frame-blaster HEX-ADDRESS: sends 6000-byte frames to the
// transport address given in hex (a node's, from the rendezvous), over UCX
// shm, as fast as it can, until it is killed. test_faults kills such
// senders at random moments to leave a node's shared-memory receive queue
// half-written (docs/transports.md, "A peer that dies"). A program of its
// own: a child forked from a test process that runs UCX threads could
// inherit their locks held.
#include <cstdio>
#include <string>
#include <vector>

#include "transport/transport.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HEX-ADDRESS\n", argv[0]);
    return 2;
  }
  const std::string hex = argv[1];
  std::vector<std::uint8_t> address;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) address.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  auto t = ferry::transport::transport::create({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}});
  if (!t) return 3;
  auto peer = (*t)->connect(address);
  if (!peer) return 4;
  const std::vector<std::uint8_t> frame(6000, 7);  // not a frame a node decodes: it drops it, after it arrived
  for (;;) {
    (void)(*t)->send(*peer, frame);
    (*t)->progress();
  }
}
