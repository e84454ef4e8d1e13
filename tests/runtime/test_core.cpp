// core/ utilities on their own: core::thread_reused lends each thread one
// object in turn, and a nested borrower on the same thread one of its own.
#include <string>
#include <thread>

#include "core/thread_reused.hpp"
#include "test_util.hpp"

using ferry::core::thread_reused;

namespace {
struct test_use;  // the tag of these tests' borrowers
using reused_text = thread_reused<std::string, test_use>;
}  // namespace

TEST_CASE("thread_reused: a thread's calls get one object in turn, a nested borrower its own, other threads theirs") {
  const std::string* first = nullptr;
  {
    reused_text a(std::string("blank"));
    CHECK(*a == "blank");
    a->assign(100, 'x');  // grows it: the next borrower on this thread gets it as it is
    first = &*a;
    {
      reused_text nested(std::string("blank"));  // while `a` holds the kept one
      CHECK(&*nested != first);
      CHECK(*nested == "blank");
      nested->assign("nested");
    }
    CHECK(*a == std::string(100, 'x'));  // the nested borrower did not touch it
  }
  {
    reused_text again(std::string("blank"));
    CHECK(&*again == first);  // the same object, lent again
    CHECK(again->capacity() >= 100);
    CHECK(*again == std::string(100, 'x'));
  }
  std::string elsewhere;
  const std::string* theirs = nullptr;
  std::thread([&] {
    reused_text other(std::string("blank"));
    elsewhere = *other;
    theirs = &*other;
  }).join();
  CHECK(elsewhere == "blank");  // another thread starts from the blank
  CHECK(theirs != first);
  reused_text after(std::string("blank"));  // returned when `again` ended: lent, not nested
  CHECK(&*after == first);
}
