// The router's owner cache on its own: owner hints and registrations carry a
// version (the object's move count), and a message from before a move never
// re-points the cache at the former owner, in whatever order they arrive.
#include <optional>
#include <thread>

#include "directory/router.hpp"
#include "test_util.hpp"

using namespace ferry;
using directory::router;
using wire::dir_register_body;

TEST_CASE("router: a delayed owner hint from before a move does not overwrite the newer owner") {
  router r(/*self=*/3, /*nodes=*/3);  // a client
  const auto id = object_id::random();
  // Created on node 0 (version 0), moved to 1 (version 1), then to 2 (2).
  r.apply(dir_register_body{id, 0, 0});
  CHECK(r.owner(id) == 0u);
  r.apply(dir_register_body{id, 2, 2});  // the hint of the second move overtook the first
  CHECK(r.owner(id) == 2u);
  CHECK(r.version(id) == 2);
  r.apply(dir_register_body{id, 1, 1});  // the delayed one
  CHECK(r.owner(id) == 2u);
  CHECK(r.next_hop(id) == 2u);
  r.apply(dir_register_body{id, 0, 0});  // older still
  CHECK(r.owner(id) == 2u);
  // The same owner again (a re-registration) and a later move are taken.
  r.apply(dir_register_body{id, 2, 2});
  CHECK(r.owner(id) == 2u);
  r.apply(dir_register_body{id, 0, 3});  // moved back to node 0
  CHECK(r.owner(id) == 0u);
  CHECK(r.version(id) == 3);
  // learn() says whether the entry names the owner it was given.
  CHECK_FALSE(r.learn(id, 1, 2));
  CHECK(r.learn(id, 0, 1));  // older, but names the same owner
  CHECK(r.version(id) == 3);
}

TEST_CASE("router: a home node keeps the latest registration when a source's and a destination's cross") {
  router home(/*self=*/0, /*nodes=*/3);
  const auto id = object_id::random();
  // Node 1 owned it at version 4 and moved it to node 2 (version 5); node 2
  // registers at once, node 1's earlier registration arrives late.
  home.apply(dir_register_body{id, 2, 5});
  home.apply(dir_register_body{id, 1, 4});
  CHECK(home.owner(id) == 2u);
  // A restart drops what the restarted node owned; its re-registration
  // (with the version its store holds) is then taken whatever it is.
  home.forget_owner(2);
  CHECK_FALSE(home.owner(id).has_value());
  home.apply(dir_register_body{id, 2, 5});
  CHECK(home.owner(id) == 2u);
  // Removal is unconditional; an owner outside the cluster, or this node
  // itself, is never taken.
  home.apply(dir_register_body{id, wire::kNoNode, 0});
  CHECK_FALSE(home.owner(id).has_value());
  home.apply(dir_register_body{id, 7, 9});
  home.apply(dir_register_body{id, 0, 9});
  CHECK_FALSE(home.owner(id).has_value());
}

TEST_CASE("router: the owner a thread remembers from its last question follows every change of the table") {
  // owner() answers a thread's repeated question without the lock while
  // nothing changed (core/last_answer.hpp); every kind of change must show.
  const auto id = object_id::random();
  std::optional<router> r;
  r.emplace(/*self=*/3, /*nodes=*/3);
  CHECK_FALSE(r->owner(id).has_value());
  CHECK_FALSE(r->owner(id).has_value());  // remembered: still nothing
  r->learn(id, 1, 0);
  CHECK(r->owner(id) == 1u);
  CHECK(r->owner(id) == 1u);
  r->learn(id, 2, 1);  // moved
  CHECK(r->owner(id) == 2u);
  r->forget(id);
  CHECK_FALSE(r->owner(id).has_value());
  r->learn(id, 0, 2);
  CHECK(r->owner(id) == 0u);
  r->forget_owner(0);  // node 0 restarted
  CHECK_FALSE(r->owner(id).has_value());
  r->learn(id, 1, 3);
  CHECK(r->owner(id) == 1u);

  // Another table, even one built where this one was, has its own answers.
  router other(/*self=*/3, /*nodes=*/3);
  CHECK_FALSE(other.owner(id).has_value());
  CHECK(r->owner(id) == 1u);
  r.reset();
  r.emplace(/*self=*/3, /*nodes=*/3);
  CHECK_FALSE(r->owner(id).has_value());

  // Another thread's change is seen here.
  std::thread([&] { r->learn(id, 2, 0); }).join();
  CHECK(r->owner(id) == 2u);
}
