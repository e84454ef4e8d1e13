// A build without libfabric (FERRY_WITH_OFI=OFF: the aarch64 DPU node, whose
// link is UCX tcp): asking for the ofi transport is a clear error.
#include "transport.hpp"

namespace ferry::transport {

result<std::unique_ptr<transport>> make_ofi_transport(const options&) {
  return make_error(errc::unsupported, "this ferry was built without libfabric (FERRY_WITH_OFI=OFF): use --transport ucx");
}

}  // namespace ferry::transport
