// ⑤ Directory messages a node sends: registrations with an object's home,
// and owner hints to requesters (router.hpp says when each is sent).
#pragma once

#include <ferry/object_id.hpp>

#include "directory/router.hpp"
#include "session/member.hpp"

namespace ferry::directory {

/// Tell `id`'s home node that `owner` owns it now, as of its `version`-th
/// move (kNoNode: removed); no message when this process is the home.
void tell_home(session::member& member, const router& r, const object_id& id, node_index owner,
               std::uint64_t version);
/// A request from `requester` for `id` is being passed on to `next`: if
/// `next` is the owner this process knows, tell the requester so its next
/// request goes there directly (with the version this process knows).
void hint_owner(session::member& member, const router& r, node_index requester, const object_id& id, node_index next);

}  // namespace ferry::directory
