// The call table on its own: every request completes exactly once, through
// growth, out-of-order answers, wrap-around of the probe sequence, late
// answers and peer-death sweeps (its open addressing must never lose or
// misplace an entry: a lost entry is a call that hangs); and a call's
// state taking its answer into the caller's memory (a bulk get's chunks).
#include <array>
#include <map>
#include <random>

#include "calls/call_table.hpp"
#include "invoke/call_state.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace ferry::calls;

namespace {

struct answer_log {
  std::uint64_t tag = 0;
  int completions = 0;
  std::vector<std::uint8_t> bytes;
  status last;
  void on_answer(std::span<const std::uint8_t> b, status&& s) {
    ++completions;
    bytes.assign(b.begin(), b.end());
    last = std::move(s);
  }
};

}  // namespace

TEST_CASE("call table: random adds and answers in any order complete each request once") {
  call_table table;
  std::mt19937_64 rng(42);
  std::map<std::uint64_t, std::shared_ptr<answer_log>> open;
  std::vector<std::shared_ptr<answer_log>> all;
  for (int round = 0; round < 20000; ++round) {
    // Keep between 0 and ~300 outstanding: the table grows past its first
    // 64 slots and entries are erased from the middle of probe runs.
    const bool add = open.empty() || (open.size() < 300 && rng() % 2 == 0);
    if (add) {
      auto log = std::make_shared<answer_log>();
      const auto id = table.add({}, completion_for(log));
      REQUIRE(id != 0);
      REQUIRE(open.emplace(id, log).second);  // ids are never reused
      log->tag = id;
      all.push_back(log);
    } else {
      auto it = open.begin();
      std::advance(it, static_cast<long>(rng() % open.size()));
      const std::uint8_t b = static_cast<std::uint8_t>(it->first);
      REQUIRE(table.complete(it->first, std::span(&b, 1), {}));
      CHECK(it->second->bytes == std::vector<std::uint8_t>{b});
      open.erase(it);
    }
    if (round % 1000 == 0) REQUIRE(table.outstanding() == open.size());
  }
  // The rest fail together; a second answer for any of them is late.
  table.fail_all(make_error(errc::cancelled, "test"));
  CHECK(table.outstanding() == 0);
  for (const auto& log : all) CHECK(log->completions == 1);
  const std::uint64_t late_before = table.late_answers();
  for (const auto& log : all) CHECK_FALSE(table.complete(log->tag, {}, {}));
  CHECK(table.late_answers() == late_before + all.size());
}

TEST_CASE("call table: a peer's death fails exactly the requests that depend on it") {
  call_table table;
  const object_id owned_by_2 = object_id::random();
  auto owner_of = [&](const object_id& id) -> std::optional<wire::node_index> {
    if (id == owned_by_2) return 2;
    return std::nullopt;
  };
  auto make = [&](depends_on d) {
    auto log = std::make_shared<answer_log>();
    log->tag = table.add(d, completion_for(log));
    return log;
  };
  auto hop = make({2, {}, wire::kNoNode, false});
  auto target = make({0, owned_by_2, wire::kNoNode, false});
  auto holder = make({1, {}, 2, false});
  auto travelling = make({0, {}, wire::kNoNode, true});
  auto unrelated = make({1, object_id::random(), wire::kNoNode, false});
  auto moved = make({5, {}, wire::kNoNode, false});
  table.set_first_hop(moved->tag, 2);

  table.fail_peer(7, false, owner_of, make_error(errc::peer_dead, "a client"));  // not a node
  CHECK(travelling->completions == 0);
  table.fail_peer(2, true, owner_of, make_error(errc::peer_dead, "node 2"));
  for (const auto& log : {hop, target, holder, travelling, moved}) {
    CHECK(log->completions == 1);
    CHECK(log->last.code() == errc::peer_dead);
  }
  CHECK(unrelated->completions == 0);
  CHECK(table.outstanding() == 1);
  CHECK(table.complete(unrelated->tag, {}, {}));
  CHECK(unrelated->completions == 1);
}

TEST_CASE("call table: ids start at random, so two tables do not share them") {
  call_table a, b;
  auto log = std::make_shared<answer_log>();
  const auto id = a.add({}, completion_for(log));
  CHECK_FALSE(b.complete(id, {}, {}));  // b's predecessor's answer finds nothing in b
  CHECK(b.late_answers() == 1);
  CHECK(a.complete(id, {}, {}));
}

TEST_CASE("call state: an answer lands in the caller's memory, and a wrong size, an error or a late answer leaves it alone") {
  using detail::call_state;
  const auto soon = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::array<std::uint8_t, 8> into{};
  const std::array<std::uint8_t, 8> none{};
  const std::array<std::uint8_t, 8> answer{1, 2, 3, 4, 5, 6, 7, 8};
  call_state state(soon, nullptr, into);

  SUBCASE("the answer's bytes go there, and the view is of that memory") {
    state.on_answer(answer, {});
    const auto view = state.wait_view();
    REQUIRE(view.ok());
    CHECK(view->data() == into.data());
    CHECK(into == answer);
  }
  SUBCASE("an answer of another size fails the call with bad_format and writes nothing") {
    state.on_answer(std::span(answer).first(7), {});
    CHECK_ERRC(state.wait_view(), errc::bad_format);
    CHECK(into == none);
  }
  SUBCASE("an error writes nothing") {
    state.on_answer({}, make_error(errc::not_found, "no such object"));
    CHECK_ERRC(state.wait_view(), errc::not_found);
    CHECK(into == none);
  }
  SUBCASE("an answer after the caller gave up at its deadline does not write into its memory") {
    call_state hurried(std::chrono::steady_clock::now() + std::chrono::milliseconds(20), nullptr, into);
    CHECK_ERRC(hurried.wait_view(), errc::timeout);
    hurried.on_answer(answer, {});
    CHECK(into == none);
  }
  SUBCASE("reused without it, the state keeps the answer in its own buffer") {
    state.on_answer(answer, {});
    REQUIRE(state.wait_view().ok());
    into = none;
    state.reuse(soon);
    state.on_answer(answer, {});
    const auto view = state.wait_view();
    REQUIRE(view.ok());
    CHECK(view->data() != into.data());
    CHECK(std::equal(view->begin(), view->end(), answer.begin(), answer.end()));
    CHECK(into == none);
  }
}
