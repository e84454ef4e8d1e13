#include "directory/notify.hpp"

namespace ferry::directory {

void tell_home(session::member& member, const router& r, const object_id& id, node_index owner,
               std::uint64_t version) {
  if (r.scheme() == scheme::e2e) return;  // no homes: owners are discovered
  const node_index home = r.home_of(id);
  if (home != member.self())
    (void)member.send(home, {wire::frame_type::dir_register, member.self(), 0, wire::dir_register_body{id, owner, version}});
}

void hint_owner(session::member& member, const router& r, node_index requester, const object_id& id, node_index next) {
  // Not to the owner itself: a request can come back to a node that has
  // just received the object, and the hint could land after it moved it on.
  if (requester != member.self() && requester != next && r.owner(id) == next)
    (void)member.send(requester, {wire::frame_type::dir_register, member.self(), 0, wire::dir_register_body{id, next, r.version(id)}});
}

}  // namespace ferry::directory
