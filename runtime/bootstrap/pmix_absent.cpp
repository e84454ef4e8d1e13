// The PMIx bootstrap in a build without PMIx (FERRY_WITH_PMIX=OFF: the
// aarch64 node build, where libpmix-dev:arm64 cannot be installed next to
// the host's libpmix-dev). Such a node joins by rendezvous or host list.
#include "bootstrap.hpp"

namespace ferry::cluster::detail {

result<std::unique_ptr<bootstrap>> open_pmix(bootstrap_role, const bootstrap_options&) {
  return make_error(errc::unsupported,
                    "this ferry was built without PMIx (FERRY_WITH_PMIX=OFF); join with a rendezvous directory or a "
                    "host list");
}

}  // namespace ferry::cluster::detail
