// ③ The object service of a node: create, put, get and remove frames,
// answered from this node's store — or passed on towards the owner, which
// then answers the requester directly (its `source` is kept).
//
// Threads: handle() runs on an executor (a persistent store fsyncs), never
// on the network thread (runtime/exec/dispatch.hpp).
#pragma once

#include <ferry/store.hpp>

#include "directory/router.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::object {

class object_service {
 public:
  object_service(store& objects, directory::router& router, session::member& member)
      : store_(objects), router_(router), member_(member) {}

  /// Answer object frame `f` (object_create, _put, _get, _remove).
  void handle(const wire::frame& f);
  /// The object frame `f` is about (the id it creates, writes, reads, removes).
  static object_id subject_of(const wire::frame& f);

 private:
  void serve(const wire::frame& f);
  void answer(const wire::frame& f, const result<void>& r);

  store& store_;
  directory::router& router_;
  session::member& member_;
};

}  // namespace ferry::object
