#include "object/service.hpp"

#include <fmt/format.h>

#include "directory/notify.hpp"

namespace ferry::object {

using wire::frame;
using wire::frame_type;

object_id object_service::subject_of(const frame& f) {
  switch (f.type) {
    case frame_type::object_create: return std::get<wire::object_create_body>(f.body).id;
    case frame_type::object_put: return std::get<wire::object_put_body>(f.body).at.id;
    case frame_type::object_get: return std::get<wire::object_get_body>(f.body).at.id;
    default: return std::get<wire::object_remove_body>(f.body).id;
  }
}

void object_service::answer(const frame& f, const result<void>& r) {
  if (r) {
    (void)member_.send(f.source, {frame_type::ack, member_.self(), f.call, wire::empty_body{}});
    return;
  }
  (void)member_.send(f.source, {frame_type::error, member_.self(), f.call,
                                wire::error_body{r.error().code(), r.error().message()}});
}

void object_service::after_lookup(const object_id& id, const frame& f) {
  // Once the owner is known, the node takes the request again, as if it had just come.
  discovery_.find_then(
      id, [again = again_, f = frame(f)]() mutable { again(std::move(f)); },
      [this, f](const status& s) { answer(f, s); });
}

void object_service::handle(const frame& f) {
  // An allocation the system refuses fails this request, not the node.
  try {
    serve(f);
  } catch (const std::bad_alloc&) {
    answer(f, make_error(errc::out_of_memory, fmt::format("node {} ran out of memory serving a {} request",
                                                          member_.self(), wire::to_string(f.type))));
  }
}

bool object_service::takes_in_place(const frame& f, std::size_t size) const {
  return f.type == frame_type::object_put && !store_.persistent() && size <= transport::kReusedFrameBytes &&
         store_.holds(std::get<wire::object_put_body>(f.body).at.id);
}

void object_service::put_in_place(const frame& f, std::span<const std::uint8_t> data) {
  const auto& at = std::get<wire::object_put_body>(f.body).at;
  answer(f, store_.write(at.id, at.offset, std::as_bytes(data)));  // not_found if removed since takes_in_place()
}

void object_service::serve(const frame& f) {
  const object_id id = subject_of(f);
  if (f.type != frame_type::object_create && !store_.holds(id)) {
    // Damaged here (a crash tore it: docs/object-format.md, "Reopen"): say
    // so — corrupt, bad_format or bad_version — rather than that no node
    // holds it.
    if (auto damage = store_.damage_of(id)) return answer(f, result<void>(std::move(*damage)));
    if (router_.must_discover(id)) return after_lookup(id, f);
    // Not ours: pass it on towards the owner; the answer goes straight to the requester.
    const auto next = router_.next_hop(id);
    if (!next) return answer(f, make_error(errc::not_found, fmt::format("no node holds object {}", id.to_string())));
    // Told before the send: a restart learned between the two fails the
    // request at once (conservatively) instead of leaving it unanswered.
    passing_on_(*next, f);
    if (auto s = member_.send(*next, f); !s.ok()) return answer(f, result<void>(std::move(s)));  // a dead owner: say so now
    directory::hint_owner(member_, router_, f.source, id, *next);
    return;
  }
  switch (f.type) {
    case frame_type::object_create: {
      const auto& b = std::get<wire::object_create_body>(f.body);
      auto made = store_.create(b.id, b.size);
      if (made) {
        router_.learn(b.id, member_.self(), 0);
        directory::tell_home(member_, router_, b.id, member_.self(), 0);
      }
      return answer(f, made ? result<void>{} : result<void>{made.error()});
    }
    case frame_type::object_put: {
      const auto& b = std::get<wire::object_put_body>(f.body);
      return answer(f, store_.write(b.at.id, b.at.offset, std::as_bytes(std::span(b.bytes))));
    }
    case frame_type::object_get: {
      const auto& b = std::get<wire::object_get_body>(f.body);
      if (b.length > wire::kMaxObjectGet)
        return answer(f, make_error(errc::too_large, fmt::format("a get asks for at most {} bytes, not {} (read in chunks)",
                                                                 wire::kMaxObjectGet, b.length)));
      if (auto in_range = store_.check_range(b.at.id, b.at.offset, b.length); !in_range) return answer(f, in_range);
      // Read straight into the answer's frame, after its head, in a buffer
      // the member keeps warm (session::member::send_written); a failed
      // read sends nothing. Not read ahead: a puller keeps its own gets in
      // flight (reading ahead of them measured slower: 203-273 ms against
      // 175-192 for a 256 MiB pull, 4 pairs).
      status read;
      const frame head{frame_type::object_data, member_.self(), f.call, wire::object_data_body{}};
      (void)member_.send_written(f.source, head, b.length, [&](std::span<std::uint8_t> into) {
        const auto bytes = std::as_writable_bytes(into);
        read = (gets_ == get_from::at_rest ? store_.read_at_rest(b.at.id, b.at.offset, bytes)
                                           : store_.read(b.at.id, b.at.offset, bytes))
                   .error();
        return read;
      });
      if (!read.ok()) answer(f, read);  // the object shrank or went since the check
      return;
    }
    case frame_type::object_remove: {
      auto removed = store_.remove(id);
      if (removed) {
        // Forget it here too (an entry per removed object would never go);
        // a later request for it is routed to its home, which forgot it.
        router_.forget(id);
        directory::tell_home(member_, router_, id, wire::kNoNode, 0);
      }
      return answer(f, removed);
    }
    default: return;
  }
}

}  // namespace ferry::object
