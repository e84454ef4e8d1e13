// Choosing and opening a bootstrap (runtime/bootstrap/bootstrap.hpp) and
// parsing host lists: every bad input is a typed error that says what to do.
#include <cstdlib>
#include <fstream>

#include "bootstrap/bootstrap.hpp"
#include "bootstrap/host_list.hpp"
#include "bootstrap/rendezvous.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace ferry::cluster;

namespace {

// These tests decide the mode themselves: no PMIx launcher in sight.
struct no_launcher {
  no_launcher() {
    for (const char* v : {"PMIX_RANK", "PMIX_NAMESPACE", "PMIX_SERVER_URI41", "PMIX_SERVER_URI4", "PMIX_SERVER_URI3",
                          "PMIX_SERVER_URI2", "PMIX_SERVER_URI21", "PMIX_SYSTEM_TMPDIR", "FERRY_NODES"})
      ::unsetenv(v);
  }
};

}  // namespace

TEST_CASE("host list: inline entries, files with comments, IPv6 in brackets") {
  const auto inline_list = REQUIRE_OK(parse_host_list("node0:7000, 10.0.0.2:7001 ,[fd00::3]:7002"));
  REQUIRE(inline_list.size() == 3);
  CHECK(inline_list[0] == host_entry{"node0", 7000});
  CHECK(inline_list[1] == host_entry{"10.0.0.2", 7001});
  CHECK(inline_list[2] == host_entry{"fd00::3", 7002});
  CHECK(inline_list[2].text() == "[fd00::3]:7002");

  test::temp_dir dir;
  const auto file = dir.path() / "hosts";
  std::ofstream(file) << "# a cluster\n\nnode0:7000   # node 0\n  node1:7000\n";
  const auto from_file = REQUIRE_OK(parse_host_list(file.string()));
  REQUIRE(from_file.size() == 2);
  CHECK(from_file[1] == host_entry{"node1", 7000});
}

TEST_CASE("host list: bad entries are bad_format naming the entry, empty or duplicate lists invalid_argument") {
  for (const char* bad : {"node0", "node0:", "node0:0", "node0:65536", "node0:70x", ":7000", "fe80::1:7000",
                          "[fe80::1]7000", "a:1,,b:2", "a:1,", "a b:1"}) {
    CAPTURE(bad);
    CHECK_ERRC(parse_host_list(bad), errc::bad_format);
  }
  const auto e = parse_host_list("a:1,b");
  CHECK(e.error().message().find("entry 2") != std::string::npos);

  test::temp_dir dir;
  const auto file = dir.path() / "hosts";
  std::ofstream(file) << "a:1\n\nnot a host\n";
  const auto f = parse_host_list(file.string());
  CHECK_ERRC(f, errc::bad_format);
  CHECK(f.error().message().find("line 3") != std::string::npos);

  std::ofstream(dir.path() / "empty") << "# nothing\n";
  CHECK_ERRC(parse_host_list((dir.path() / "empty").string()), errc::invalid_argument);
  CHECK_ERRC(parse_host_list("a:1,b:2,a:1"), errc::invalid_argument);
}

TEST_CASE_FIXTURE(no_launcher, "open_bootstrap: the choice of mode, and what is missing for each") {
  bootstrap_options none;
  const auto nothing = open_bootstrap(bootstrap_role::client, none);
  CHECK_ERRC(nothing, errc::invalid_argument);
  CHECK(nothing.error().message().find("FERRY_HOSTS") != std::string::npos);  // names every way

  bootstrap_options unknown;
  unknown.mode = "slurm";
  CHECK_ERRC(open_bootstrap(bootstrap_role::node, unknown), errc::invalid_argument);

  bootstrap_options hosts_mode;
  hosts_mode.mode = "hosts";  // but no list
  CHECK_ERRC(open_bootstrap(bootstrap_role::node, hosts_mode), errc::invalid_argument);

  // PMIx asked for outside mpirun/srun: PMIx_Init fails, and the error says what to use instead.
  bootstrap_options pmix;
  pmix.mode = "pmix";
  const auto no_pmix = open_bootstrap(bootstrap_role::node, pmix);
  CHECK_ERRC(no_pmix, errc::unsupported);
  CHECK(no_pmix.error().message().find("ferry launch") != std::string::npos);

  // A node needs an index in range (rendezvous and host list alike).
  test::temp_dir dir;
  REQUIRE_OK(rendezvous(dir.path()).init(2));
  bootstrap_options rv;
  rv.rendezvous = dir.path();
  CHECK_ERRC(open_bootstrap(bootstrap_role::node, rv), errc::invalid_argument);
  rv.index = 2;
  CHECK_ERRC(open_bootstrap(bootstrap_role::node, rv), errc::invalid_argument);
  bootstrap_options hl;
  hl.hosts = "127.0.0.1:1,127.0.0.1:2";
  CHECK_ERRC(open_bootstrap(bootstrap_role::node, hl), errc::invalid_argument);
  hl.index = 5;
  CHECK_ERRC(open_bootstrap(bootstrap_role::node, hl), errc::invalid_argument);

  // A rendezvous directory wins over a host list when both are given.
  rv.index = 1;
  rv.hosts = "not even parsed";
  auto chosen = REQUIRE_OK(open_bootstrap(bootstrap_role::node, rv));
  CHECK(chosen->describe().starts_with("rendezvous"));
  CHECK(chosen->self() == 1);
  CHECK(chosen->nodes() == 2);
}

TEST_CASE("rendezvous bootstrap: clients claim distinct indices, publish their address, and give it back") {
  test::temp_dir dir;
  REQUIRE_OK(rendezvous(dir.path()).init(2));
  bootstrap_options o;
  o.rendezvous = dir.path();
  auto a = REQUIRE_OK(open_bootstrap(bootstrap_role::client, o));
  auto b = REQUIRE_OK(open_bootstrap(bootstrap_role::client, o));
  CHECK(a->self() == 2);
  CHECK(b->self() == 3);
  REQUIRE_OK(a->publish(std::vector<std::uint8_t>{1, 2, 3}));
  REQUIRE_OK(b->publish(std::vector<std::uint8_t>{4}));
  o.index = 0;
  auto node = REQUIRE_OK(open_bootstrap(bootstrap_role::node, o));
  using clients_t = std::vector<std::pair<node_index, std::vector<std::uint8_t>>>;
  CHECK(node->clients() == clients_t{{2, {1, 2, 3}}, {3, {4}}});
  REQUIRE_OK(a->leave());
  CHECK(node->clients() == clients_t{{3, {4}}});
  b.reset();  // a client that goes without leave() gives its index back too
  CHECK(node->clients().empty());
  // Nodes that never published: a timeout naming them.
  const auto missing = node->node_addresses(std::chrono::milliseconds(20));
  CHECK_ERRC(missing, errc::timeout);
  CHECK(missing.error().message().find("nodes 0,1") != std::string::npos);
}
