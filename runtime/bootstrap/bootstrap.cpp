#include "bootstrap.hpp"

#include <cstdlib>

#include <fmt/format.h>

namespace ferry::cluster {

result<std::unique_ptr<bootstrap>> open_bootstrap(bootstrap_role role, const bootstrap_options& options) {
  std::string mode = options.mode;
  if (mode.empty() || mode == "auto") {
    if (!options.rendezvous.empty()) mode = "rendezvous";
    else if (!options.hosts.empty()) mode = "hosts";
    else if (std::getenv("PMIX_RANK") != nullptr) mode = "pmix";
    else
      return make_error(errc::invalid_argument,
                        "no cluster to join: give a rendezvous directory (FERRY_RENDEZVOUS / --rendezvous; "
                        "`ferry launch -n N -- PROGRAM` sets it up), a host list (FERRY_HOSTS / --hosts), "
                        "or run under mpirun/srun (PMIx)");
  }
  if (mode == "rendezvous") {
    if (options.rendezvous.empty())
      return make_error(errc::invalid_argument, "bootstrap mode 'rendezvous' needs a directory (FERRY_RENDEZVOUS / --rendezvous)");
    return detail::open_rendezvous(role, options);
  }
  if (mode == "hosts") {
    if (options.hosts.empty())
      return make_error(errc::invalid_argument, "bootstrap mode 'hosts' needs a host list (FERRY_HOSTS / --hosts)");
    return detail::open_host_list(role, options);
  }
  if (mode == "pmix") return detail::open_pmix(role, options);
  return make_error(errc::invalid_argument,
                    fmt::format("unknown bootstrap mode '{}' (expected rendezvous, hosts or pmix)", mode));
}

}  // namespace ferry::cluster
