// The default placement policy and the times it measures, on their own (no
// cluster): a place measured recently is estimated by its measurement, a
// place not measured by the model; while another place is measured and the
// owner is not, one call goes to the owner to measure it; the measurements
// go stale after kObservedForMs, and only answers and timeouts count (not a
// call that carried the code: its time includes the compile); the link
// bandwidths the client's bulk transfers measured replace the assumed ones.
#include <chrono>
#include <string>
#include <vector>

#include <ferry/ferry.h>
#include <ferry/placement.hpp>

#include "placement/measured_calls.hpp"
#include "placement/measured_links.hpp"
#include "test_util.hpp"

using namespace ferry;
using placement_inputs::measured_calls;
using placement_inputs::measured_links;

namespace {

constexpr std::uint32_t kBob = 0, kCarol = 1;

// Bob owns 1 MiB and reports a long queue of long calls; Carol is idle and
// holds the code. Nothing is measured.
std::vector<placement_candidate> bob_busy_carol_idle() {
  placement_candidate bob;
  bob.node = kBob;
  bob.kind = FERRY_NODE_HOST;
  bob.owner = true;
  bob.has_code = true;
  bob.load = {.queued = 12, .running = 2, .executors = 2, .call_us = 100'000};
  bob.link = {2, 4000};
  placement_candidate carol = bob;
  carol.node = kCarol;
  carol.owner = false;
  carol.load = {.executors = 2};
  return {bob, carol};
}

placement_input input_for(const std::vector<placement_candidate>& c) {
  placement_input in;
  in.function = "infer";
  in.owner = kBob;
  in.object_bytes = 1 << 20;
  in.code_bytes = 4000;
  in.args_bytes = 16;
  in.candidates = c;
  return in;
}

}  // namespace

TEST_CASE("cost model: with nothing measured the model decides: Bob's queue sends the call to Carol") {
  auto c = bob_busy_carol_idle();
  cost_model m;
  const auto d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node == kCarol);
  CHECK(d.estimate_us < 0.8 * d.owner_estimate_us);
  CHECK(d.reason.find("queue") != std::string::npos);
}

TEST_CASE("cost model: a measured owner is estimated by its measurement, not by its queue: it keeps the call") {
  auto c = bob_busy_carol_idle();
  c[0].observed_us = 3000;  // Bob runs this call in place, beside his busy executors
  cost_model m;
  std::string why;
  CHECK(m.estimate(input_for(c), c[0], &why) == doctest::Approx(3000));
  CHECK(why.find("measured 3000") != std::string::npos);
  const auto d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node == kBob);
  CHECK(d.owner_estimate_us == doctest::Approx(3000));
}

TEST_CASE("cost model: a place without the code adds shipping and compiling to its measurement") {
  auto c = bob_busy_carol_idle();
  c[1].observed_us = 500;
  c[1].has_code = false;  // e.g. it restarted since
  cost_model m;
  CHECK(m.estimate(input_for(c), c[1], nullptr) > 500 + 3000);
}

TEST_CASE("cost model: while Carol is measured and Bob is not, one call measures Bob, but not while one is on its way") {
  auto c = bob_busy_carol_idle();
  c[1].observed_us = 20'000;
  cost_model m;
  auto d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node == kBob);
  CHECK(d.reason.find("not measured in the last 1000 ms, this call measures it") != std::string::npos);
  c[0].observing = true;  // that call has not answered yet
  d = m.choose(input_for(c));
  CHECK(d.node == kCarol);
  c[0].observing = false;
  c[0].alive = false;  // a dead owner is not measured
  d = m.choose(input_for(c));
  CHECK(d.node == kCarol);
}

TEST_CASE("cost model: both measured, the faster wins, the owner only by the margin") {
  auto c = bob_busy_carol_idle();
  c[0].observed_us = 600'000;  // Bob's queue, measured
  c[1].observed_us = 20'000;
  cost_model m;
  auto d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node == kCarol);
  CHECK(d.estimate_us == doctest::Approx(20'000));
  c[0].observed_us = 22'000;  // Carol is faster, but not by 20%
  d = m.choose(input_for(c));
  CHECK(d.node == kBob);
}

TEST_CASE("cost model: a place not measured that would pull is estimated at no less than a measured place that "
          "pulled: the owner serves both pulls") {
  // Bob answers in place in 5 ms while his executors are busy; Carol pulled
  // and took 24 ms; Dave is idle, has no code and was never sent a call: the
  // model alone puts him at about 5 ms (a 1 MiB pull over shm, 0.3 ms).
  auto c = bob_busy_carol_idle();
  c[0].load.call_us = 1'800;  // his calls' mean run, in place and on the executors
  c[0].observed_us = 5'000;
  c[1].observed_us = 24'000;
  placement_candidate dave = c[1];
  dave.node = 2;
  dave.observed_us = 0;
  dave.has_code = false;
  dave.load = {.executors = 2, .call_us = 1'800};
  c.push_back(dave);
  cost_model m;
  std::string why;
  const double code = 2 + 4000.0 / 4000 + cost_model::parameters{}.compile_us;  // its 4000 B shipped, then compiled
  CHECK(m.estimate(input_for(c), c[2], &why) == doctest::Approx(24'000 + code));
  CHECK(why.find("another place's measured pull 24000") != std::string::npos);
  auto d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node == kBob);
  // Without Carol's measurement the model decides for Dave, as before.
  c[1].observed_us = 0;
  CHECK(m.estimate(input_for(c), c[2], &why) < 24'000);
  // The owner's own measurement is no floor for a place that pulls.
  c[0].observed_us = 50'000;
  d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node != kBob);
}

TEST_CASE("measured calls: a mean per function and place, fresh for kObservedForMs, counting only answers and "
          "timeouts") {
  measured_calls t;
  using clock = measured_calls::clock;
  const auto code = object_id::random();
  const measured_calls::place bob{code, kBob, false}, carol{code, kCarol, true}, bob_pulled{code, kBob, true};
  const auto t0 = clock::now();
  CHECK(t.look(bob, t0).us == 0);
  CHECK_FALSE(t.look(bob, t0).on_the_way);

  t.sent(bob);
  t.sent(bob);
  CHECK(t.look(bob, t0).on_the_way);
  t.answered(bob, std::chrono::microseconds(1000), status{}, t0);
  CHECK(t.look(bob, t0).us == doctest::Approx(1000));
  CHECK(t.look(bob, t0).on_the_way);  // one still out
  t.answered(bob, std::chrono::microseconds(3000), status{}, t0);
  CHECK(t.look(bob, t0).us == doctest::Approx(2000));  // the moving mean
  CHECK_FALSE(t.look(bob, t0).on_the_way);

  // Another place, or the same node as a puller, is another figure.
  CHECK(t.look(carol, t0).us == 0);
  CHECK(t.look(bob_pulled, t0).us == 0);

  // A dead peer or a fault says nothing of how long the place takes; a timeout does.
  t.sent(carol);
  t.answered(carol, std::chrono::microseconds(5), make_error(errc::peer_dead, "gone"), t0);
  CHECK(t.look(carol, t0).us == 0);
  CHECK_FALSE(t.look(carol, t0).on_the_way);
  t.sent(carol);
  t.answered(carol, std::chrono::milliseconds(500), make_error(errc::timeout, "late"), t0);
  CHECK(t.look(carol, t0).us == doctest::Approx(500'000));

  // A call that carried the code ends without measuring (its time includes the compile).
  t.sent(bob_pulled);
  CHECK(t.look(bob_pulled, t0).on_the_way);
  t.ended(bob_pulled);
  CHECK(t.look(bob_pulled, t0).us == 0);
  CHECK_FALSE(t.look(bob_pulled, t0).on_the_way);

  // Stale after kObservedForMs; the next answer starts the mean afresh.
  const auto later = t0 + std::chrono::milliseconds(kObservedForMs + 1);
  CHECK(t.look(bob, later).us == 0);
  t.sent(bob);
  t.answered(bob, std::chrono::microseconds(7000), status{}, later);
  CHECK(t.look(bob, later).us == doctest::Approx(7000));
}

TEST_CASE("measured links: a node's bandwidth is the moving mean of its bulk transfers, others keep the assumed figure") {
  measured_links links;
  const link_figures assumed{2, 4000};
  CHECK(links.link(kBob, assumed).bytes_per_us == 4000);
  // Too small to say anything of a link: a round trip, not a bandwidth.
  links.transferred(kBob, measured_links::kMinBytes - 1, std::chrono::microseconds(1'000'000));
  CHECK(links.link(kBob, assumed).bytes_per_us == 4000);

  links.transferred(kBob, 1 << 20, std::chrono::milliseconds(10));  // ~105 bytes a µs
  CHECK(links.link(kBob, assumed).bytes_per_us == doctest::Approx((1 << 20) / 10'000.0));
  CHECK(links.link(kBob, assumed).latency_us == 2);  // latencies stay assumed
  links.transferred(kBob, 1 << 20, std::chrono::milliseconds(1));  // a new transfer weighs 1/4
  CHECK(links.link(kBob, assumed).bytes_per_us ==
        doctest::Approx(0.75 * (1 << 20) / 10'000.0 + 0.25 * (1 << 20) / 1'000.0));
  CHECK(links.link(kCarol, assumed).bytes_per_us == 4000);
}

TEST_CASE("cost model: a measured slow link to the owner keeps the call there: pulling its data would cost more than "
          "its queue") {
  auto c = bob_busy_carol_idle();  // Bob's queue sends the call to Carol while the links are assumed (first case)
  measured_links links;
  links.transferred(kBob, 1 << 20, std::chrono::seconds(1));  // 1 MiB took a second to or from Bob
  c[kBob].link = links.link(kBob, c[kBob].link);
  cost_model m;
  const auto d = m.choose(input_for(c));
  INFO(d.reason);
  CHECK(d.node == kBob);
  CHECK(d.reason.find("pull") != std::string::npos);
}
