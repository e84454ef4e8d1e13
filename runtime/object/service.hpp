// ③ The object service of a node: create, put, get and remove frames,
// answered from this node's store — or passed on towards the owner, which
// then answers the requester directly (its `source` is kept). Only this
// node knows where it passed a request on, so it tells its owner first
// (`passing_on`): if the next node dies or restarts before answering, the
// node fails the request to its requester (docs/reliability.md).
//
// A request for an object whose owner this node does not know, though it
// should (it is the object's home, or the cluster runs the e2e scheme),
// waits for a lookup first (directory::discovery, router::must_discover):
// it is set aside, holding no thread, and handed back to the node
// (`again`) once some node has said it owns the object; when none does, it
// is answered not_found. A lookup waits for every node's answer, so a few
// requests for ids nobody holds could otherwise tie up every object thread
// while one node is slow to answer.
//
// Threads: handle() runs on an object thread (a persistent store fsyncs),
// never on the network thread; put_in_place() and `again` run there
// (runtime/exec/dispatch.hpp).
#pragma once

#include <functional>
#include <span>

#include <ferry/store.hpp>

#include "directory/discovery.hpp"
#include "directory/router.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::object {

class object_service {
 public:
  /// Called with the next node and the request, just before a request
  /// this node does not hold is passed on (from the thread running handle()).
  using passing_on_fn = std::function<void(wire::node_index next, const wire::frame& f)>;
  /// Called, on the driving thread, with a request set aside for a lookup,
  /// once the lookup has found the object's owner: take it again from the
  /// start (admission, then handle()).
  using again_fn = std::function<void(wire::frame&& f)>;

  /// Where a get reads the object: from memory (its mapping: for a file
  /// store, the page cache), or from where the store keeps it at rest
  /// (store::read_at_rest: a file store reads its file with O_DIRECT). A
  /// storage node reads at rest, so a pull reads its device as the code
  /// shipped to it does with cx.read (docs/devices.md).
  enum class get_from : std::uint8_t { memory, at_rest };

  object_service(store& objects, directory::router& router, directory::discovery& discovery, session::member& member,
                 passing_on_fn passing_on, again_fn again, get_from gets = get_from::memory)
      : store_(objects),
        router_(router),
        discovery_(discovery),
        member_(member),
        passing_on_(std::move(passing_on)),
        again_(std::move(again)),
        gets_(gets) {}

  /// Answer object frame `f` (object_create, _put, _get, _remove).
  void handle(const wire::frame& f);
  /// Whether an object_put of `size` data bytes may be written where its
  /// frame is handled (the network thread): this node's store keeps the
  /// object, in memory (not persistent), and the data is at most a chunk
  /// (transport::kReusedFrameBytes). Otherwise the frame takes handle()'s
  /// way (an object thread; passed on, if the object is elsewhere).
  [[nodiscard]] bool takes_in_place(const wire::frame& f, std::size_t size) const;
  /// Write such a put from `data`, still in the transport's buffer
  /// (session::member::on_data_frame), and answer it. The caller has
  /// admitted it (migration::try_admit).
  void put_in_place(const wire::frame& f, std::span<const std::uint8_t> data);
  /// The object frame `f` is about (the id it creates, writes, reads, removes).
  static object_id subject_of(const wire::frame& f);

 private:
  void serve(const wire::frame& f);
  void answer(const wire::frame& f, const result<void>& r);
  /// Set `f` aside until a lookup of `id` ends (see above).
  void after_lookup(const object_id& id, const wire::frame& f);

  store& store_;
  directory::router& router_;
  directory::discovery& discovery_;
  session::member& member_;
  passing_on_fn passing_on_;
  again_fn again_;
  get_from gets_;
};

}  // namespace ferry::object
