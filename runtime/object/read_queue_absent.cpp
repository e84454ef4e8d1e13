// The read queue in a build without liburing (FERRY_WITH_URING=OFF: the
// aarch64 node build): no read is kept in flight, every O_DIRECT read of a
// file store is synchronous.
#include "read_queue.hpp"

namespace ferry::object {

std::unique_ptr<read_queue> read_queue::open(unsigned) { return nullptr; }

}  // namespace ferry::object
