// ferry's own ifunc API (<ferry/ifunc.h>) on real `ferry node` processes
// over UCX shm and tcp: ifunc libraries in the prototype's style, built by
// `ferry ifunc build` (tests/ifunc/libs: hello.c, result.c, pure.c, ... are
// the same sources the compat tests run), sent to nodes by index, NAME_main
// run on the nodes (in place or on an executor) on ferry objects (target_args), results sent
// back to this program and run by ferry_ifunc_poll; typed errors, and the
// nodes keep serving.
#include <ferry/ifunc.h>

#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <ferry/runtime.hpp>

#include "libs/ifunc_test.h"
#include "libs/node_ifunc_test.h"
#include "real_cluster.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using ferry::object_id;

constexpr ferry_ifunc_status kOk = 0;
ferry_ifunc_status code(ferry::errc e) { return static_cast<ferry_ifunc_status>(e); }

// A cluster of real nodes, its client runtime and one ifunc context. The
// ifunc JIT cache is the build tree's (nodes inherit it).
struct ifunc_cluster {
  std::unique_ptr<rt_test::node_cluster> cluster;
  ferry_ifunc_context* cx = nullptr;

  ifunc_cluster(const std::string& tls, std::uint32_t nodes, std::vector<std::string> node_args = {}) {
    ::setenv("XDG_CACHE_HOME", IFUNC_CACHE_DIR, 1);
    const ferry::transport::options ucx{.kind = "ucx", .tls = tls, .provider = {}, .link = {}};
    cluster = std::make_unique<rt_test::node_cluster>(rt_test::cluster_setup{std::move(node_args), nodes, ucx, {}, "lo"});
    ferry_ifunc_context_params p{FERRY_IFUNC_CONTEXT_FIELD_NAME, "test"};
    REQUIRE(ferry_ifunc_context_create(&p, &cx) == kOk);
  }
  ~ifunc_cluster() { ferry_ifunc_context_destroy(cx); }

  ferry::runtime& rt() { return *cluster->rt; }

  ferry_ifunc_h reg(const char* name, bool pure = false, const char* lib_dir = IFUNC_LIB_DIR) {
    ferry_ifunc_register_params p{};
    p.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME | FERRY_IFUNC_REGISTER_FIELD_LIB_DIR | FERRY_IFUNC_REGISTER_FIELD_PURE;
    p.name = name;
    p.lib_dir = lib_dir;
    p.pure = pure;
    ferry_ifunc_h h = 0;
    const auto st = ferry_ifunc_register(cx, &p, &h);
    REQUIRE_MESSAGE(st == kOk, ferry_ifunc_last_error());
    return h;
  }

  // Build a message of `fn` for `args`, send it as `where` says, free it.
  ferry_ifunc_status send(ferry_ifunc_h fn, const void* args, std::size_t size, ferry_ifunc_send_params where) {
    ferry_ifunc_msg msg{};
    REQUIRE(ferry_ifunc_msg_create(cx, fn, const_cast<void*>(args), size, &msg) == kOk);
    const auto st = ferry_ifunc_send(cx, &msg, &where);
    ferry_ifunc_msg_free(&msg);
    return st;
  }
  ferry_ifunc_status send_to(ferry_ifunc_h fn, const void* args, std::size_t size, std::uint32_t node,
                             object_id target, std::uint32_t flags = 0) {
    return send(fn, args, size,
                {FERRY_IFUNC_SEND_FIELD_NODE | FERRY_IFUNC_SEND_FIELD_TARGET | FERRY_IFUNC_SEND_FIELD_FLAGS, node,
                 ferry_ref{target.hi, target.lo, 0}, flags});
  }
  // Put `result` on every node (node_chaser and node_pp find it by name).
  void install_result(ferry_ifunc_h result) {
    const std::uint64_t zero = 0;
    for (std::uint32_t n = 0; n < cluster->count; ++n)
      REQUIRE(send_to(result, &zero, sizeof zero, n, {}, FERRY_IFUNC_SEND_INSTALL) == kOk);
  }

  // Poll until something ran or failed (bounded): its status.
  ferry_ifunc_status poll(void* target_args, std::size_t buffer_size = 1 << 16) {
    std::vector<std::uint64_t> buffer(buffer_size / 8);
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      const auto st = ferry_ifunc_poll(cx, buffer.data(), buffer_size, target_args);
      if (st != FERRY_IFUNC_NO_MESSAGE) return st;
      std::this_thread::sleep_for(50us);
    }
    FAIL("no ifunc message arrived in 30 s");
    return FERRY_IFUNC_NO_MESSAGE;
  }

  // Where the nodes ran the messages (and mobile calls) they got: {in
  // place, on an executor}, summed over their stats files (rewritten every
  // 50 ms) once these count `expected` in all (or after 30 s).
  std::pair<std::uint64_t, std::uint64_t> runs(std::uint64_t expected) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      std::uint64_t in_place = 0, executor = 0;
      for (std::uint32_t n = 0; n < cluster->count; ++n) {
        auto s = cluster->stats(n);
        in_place += s["calls_inline"];
        executor += s["calls_on_executor"];
      }
      if (in_place + executor >= expected || std::chrono::steady_clock::now() > until) return {in_place, executor};
      std::this_thread::sleep_for(10ms);
    }
  }

  object_id object_on(std::uint32_t node, std::size_t size) { return rt().objects().create_bytes(size, node); }
  template <class T>
  T read(object_id id) {
    T out{};
    auto bytes = rt().objects().get_bytes(id, 0, sizeof(T));
    std::memcpy(&out, bytes.data(), sizeof(T));
    return out;
  }
  /// The text a hello message left in `target` once it ran (at most 30 s).
  std::string hello_text(object_id target) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (read<hello_target_t>(target).calls == 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
    return read<hello_target_t>(target).text;
  }
};

// hello_main writes into its target object: payload bytes, and fib(17) +
// global_var computed by the shipped code with its data. The second and
// third messages come without code (the node has it in this context).
void hello_case(const std::string& tls) {
  ifunc_cluster c(tls, 2);
  const ferry_ifunc_h hello = c.reg("hello");
  const object_id target = c.object_on(1, sizeof(hello_target_t));
  std::uint64_t calls = 0;
  for (std::size_t size : {std::size_t{13}, std::size_t{200}, std::size_t{1} << 20}) {
    std::vector<std::uint8_t> text(size);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < size; ++i) sum += text[i] = static_cast<std::uint8_t>('a' + i % 26);
    REQUIRE(c.send_to(hello, text.data(), size, 1, target) == kOk);
    ++calls;
    hello_target_t t{};
    const auto until = std::chrono::steady_clock::now() + 30s;
    while ((t = c.read<hello_target_t>(target)).calls < calls && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
    CAPTURE(size);
    REQUIRE(t.calls == calls);
    CHECK(t.payload_size == size);
    CHECK(t.byte_sum == sum);
    CHECK(t.fib == 2584 + 42);
    CHECK(std::string(t.text) == std::string(text.begin(), text.begin() + std::min<std::size_t>(size, 63)));
  }
}

// The chase: 30 walks of depth 1..48 over three nodes, each answered by a
// result ifunc from the node where it ended, checked against the walk done
// here (a stale answer fails).
void chase_case(const std::string& tls) {
  ifunc_cluster c(tls, 3);
  const ferry_ifunc_h chaser = c.reg("node_chaser");
  const ferry_ifunc_h result = c.reg("result");
  c.install_result(result);
  constexpr std::uint64_t kShard = 256, kNodes = 3, kTotal = kShard * kNodes;
  std::mt19937_64 rng(2026);
  std::vector<std::uint64_t> table(kTotal);
  for (auto& e : table) e = rng() % kTotal;
  std::vector<object_id> shard(kNodes);
  for (std::uint32_t n = 0; n < kNodes; ++n) shard[n] = c.object_on(n, sizeof(node_shard_t) + kShard * 8);
  for (std::uint32_t n = 0; n < kNodes; ++n) {
    std::vector<std::byte> image(sizeof(node_shard_t) + kShard * 8);
    node_shard_t h{};
    h.nodes = kNodes;
    h.shard_size = kShard;
    for (std::uint32_t m = 0; m < kNodes; ++m) h.shard[m] = {shard[m].hi, shard[m].lo, 0};
    std::memcpy(image.data(), &h, sizeof h);
    std::memcpy(image.data() + sizeof h, table.data() + n * kShard, kShard * 8);
    c.rt().objects().put_bytes(shard[n], 0, image);
  }
  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < 30; ++i) {
    node_chase_args_t a{1 + i * 47 / 29, rng() % kTotal};
    std::uint64_t expect = a.addr;
    for (std::uint64_t d = 0; d < a.depth; ++d) expect = table[expect];
    const auto owner = static_cast<std::uint32_t>(a.addr / kShard);
    REQUIRE(c.send_to(chaser, &a, sizeof a, owner, shard[owner]) == kOk);
    std::uint64_t got = ~std::uint64_t{0};
    const auto st = c.poll(&got);
    REQUIRE_MESSAGE(st == kOk, ferry_ifunc_last_error());
    CAPTURE(i);
    CHECK(got == expect);
  }
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::uint64_t hops = 0;
  for (std::uint32_t n = 0; n < kNodes; ++n) hops += c.read<node_shard_t>(shard[n]).hops;
  const auto [in_place, executor] = c.runs(hops + kNodes);  // and the installs of result
  MESSAGE(tls << ": 30 chases, " << hops << " node_chaser_main runs, " << ms / 30 << " ms per chase; " << in_place
              << " messages run in place, " << executor << " on an executor");
  CHECK(hops >= 30);
}

// node_pp's arguments: `rounds` runs between nodes 0 and 1, each counting in its `counter`.
node_pp_args_t pingpong_args(std::uint32_t rounds, const object_id (&counter)[2]) {
  node_pp_args_t a{};
  a.rounds = rounds;
  for (int i = 0; i < 2; ++i) {
    a.node[i] = static_cast<std::uint32_t>(i);
    a.counter[i] = {counter[i].hi, counter[i].lo, 0};
  }
  return a;
}

// The ping-pong between two nodes, started from inside NAME_main: 200 runs,
// both counters checked, the count back by a result ifunc.
void pingpong_case(const std::string& tls) {
  ifunc_cluster c(tls, 2);
  const ferry_ifunc_h pp = c.reg("node_pp");
  const ferry_ifunc_h result = c.reg("result");
  c.install_result(result);
  const object_id counter[2] = {c.object_on(0, 8), c.object_on(1, 8)};
  const node_pp_args_t a = pingpong_args(200, counter);
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  std::uint64_t runs = 0;
  const auto st = c.poll(&runs);
  REQUIRE_MESSAGE(st == kOk, ferry_ifunc_last_error());
  const auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count();
  CHECK(runs == 200);
  CHECK(c.read<std::uint64_t>(counter[0]) == 100);
  CHECK(c.read<std::uint64_t>(counter[1]) == 100);
  const auto [in_place, executor] = c.runs(200 + 2);  // and the installs of result
  MESSAGE(tls << ": ping-pong " << us / 100 << " us per round trip between two nodes; " << in_place
              << " messages run in place, " << executor << " on an executor");
}

}  // namespace

TEST_CASE("ifunc nodes: hello writes into its target object over shm") { hello_case("shm"); }
TEST_CASE("ifunc nodes: hello writes into its target object over tcp") { hello_case("tcp"); }
TEST_CASE("ifunc nodes: a recursive chase across three nodes returns a result ifunc over shm") { chase_case("shm"); }
TEST_CASE("ifunc nodes: a recursive chase across three nodes returns a result ifunc over tcp") { chase_case("tcp"); }
TEST_CASE("ifunc nodes: a ping-pong started from inside NAME_main over shm") { pingpong_case("shm"); }
TEST_CASE("ifunc nodes: a ping-pong started from inside NAME_main over tcp") { pingpong_case("tcp"); }

TEST_CASE("ifunc nodes: errors are typed and the nodes keep serving") {
  ifunc_cluster c("shm", 2);
  ferry_ifunc_register_params p{};
  p.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME | FERRY_IFUNC_REGISTER_FIELD_LIB_DIR;
  p.lib_dir = IFUNC_LIB_DIR;
  ferry_ifunc_h h = 0;

  // Missing NAME_main.
  p.name = "nomain";
  CHECK(ferry_ifunc_register(c.cx, &p, &h) == code(ferry::errc::bad_format));
  CHECK(std::string(ferry_ifunc_last_error()).find("nomain_main") != std::string::npos);
  // A corrupt bitcode file.
  ferry::test::temp_dir scratch;
  std::ofstream(scratch.path() / "broken.x86_64-unknown-linux-gnu.bc") << "BC\xc0\xde garbage, not bitcode";
  const std::string scratch_dir = scratch.path().string();
  p.name = "broken";
  p.lib_dir = scratch_dir.c_str();
  CHECK(ferry_ifunc_register(c.cx, &p, &h) == code(ferry::errc::bad_format));
  p.lib_dir = IFUNC_LIB_DIR;
  // No such library.
  p.name = "absent";
  CHECK(ferry_ifunc_register(c.cx, &p, &h) == code(ferry::errc::not_found));
  // Ifuncs sent to nodes link against ferry's allow-list: getenv is refused, pure or not.
  p.name = "leak";
  CHECK(ferry_ifunc_register(c.cx, &p, &h) == code(ferry::errc::policy_violation));
  CHECK(std::string(ferry_ifunc_last_error()).find("getenv") != std::string::npos);
  // payload_init returning non-zero.
  const ferry_ifunc_h refuse = c.reg("refuse");
  ferry_ifunc_msg msg{};
  char byte = 1;
  CHECK(ferry_ifunc_msg_create(c.cx, refuse, &byte, 1, &msg) == code(ferry::errc::cancelled));
  CHECK(std::string(ferry_ifunc_last_error()).find("returned 7") != std::string::npos);
  // Deregister twice; a message of a deregistered ifunc.
  CHECK(ferry_ifunc_deregister(c.cx, refuse) == kOk);
  CHECK(ferry_ifunc_deregister(c.cx, refuse) == code(ferry::errc::not_found));
  CHECK(ferry_ifunc_msg_create(c.cx, refuse, &byte, 1, &msg) == code(ferry::errc::not_found));
  // Nowhere to send, or no such node.
  const ferry_ifunc_h hello = c.reg("hello");
  CHECK(c.send(hello, &byte, 1, {}) == code(ferry::errc::invalid_argument));
  CHECK(c.send(hello, &byte, 1, {FERRY_IFUNC_SEND_FIELD_NODE, 7, {}, 0}) == code(ferry::errc::invalid_argument));
  // Poll outside NAME_main / with nothing there.
  ferry_ifunc_here_info here{};
  CHECK(ferry_ifunc_here(&here) == code(ferry::errc::not_found));

  // A node: a target object that is not there -> not_local, reported to this context.
  const object_id on0 = c.object_on(0, sizeof(hello_target_t));
  REQUIRE(c.send_to(hello, "hi", 2, 1, on0) == kOk);
  CHECK(c.poll(nullptr) == code(ferry::errc::not_local));
  CHECK(std::string(ferry_ifunc_last_error()).find("node 1") != std::string::npos);
  // A node: NAME_main faults (pure_main calls its target_args, here an
  // object's bytes) -> memory_fault reported; the node keeps serving.
  const ferry_ifunc_h pure = c.reg("pure", true);
  const object_id on1 = c.object_on(1, 64);
  REQUIRE(c.send_to(pure, "abc", 3, 1, on1) == kOk);
  CHECK(c.poll(nullptr) == code(ferry::errc::memory_fault));
  const object_id hello_target = c.object_on(1, sizeof(hello_target_t));
  REQUIRE(c.send_to(hello, "still here", 10, 1, hello_target) == kOk);
  CHECK(c.hello_text(hello_target) == "still here");

  // Results back here: a buffer too small, then code this context no longer has.
  const ferry_ifunc_h pp = c.reg("node_pp");
  ferry_ifunc_h result = c.reg("result");
  c.install_result(result);
  const object_id counter[2] = {c.object_on(0, 8), c.object_on(1, 8)};
  node_pp_args_t a{};
  a.rounds = 4;  // the last run is on node 1, which sends the result
  for (int i = 0; i < 2; ++i) {
    a.node[i] = static_cast<std::uint32_t>(i);
    a.counter[i] = {counter[i].hi, counter[i].lo, 0};
  }
  std::uint64_t runs = 0;
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  CHECK(c.poll(&runs, 64) == code(ferry::errc::too_large));  // dropped, never run
  CHECK(runs == 0);
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  CHECK(c.poll(&runs) == kOk);
  CHECK(runs == 4);
  REQUIRE(ferry_ifunc_deregister(c.cx, result) == kOk);
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);  // node 1 sends result without its code now
  CHECK(c.poll(&runs) == code(ferry::errc::unknown_code));
  result = c.reg("result");  // back, and the next result runs
  runs = 0;
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  CHECK(c.poll(&runs) == kOk);
  CHECK(runs == 4);
  c.cluster->serves(c.cluster->cell_on(1, 5), 5);  // and ordinary calls still work
}

// Signed ifunc libraries on nodes started with --trust-keys: copies of the
// test libraries signed with `ferry sign --ifunc` run (hello on its target;
// node_pp, which sends itself from node to node, with the signature its
// code section carries on); the unsigned originals are refused with
// unsigned_code, a signed copy with one bitcode byte flipped after signing
// (NAME.sig kept) with bad_signature, before the node's LLVM parses it (the
// flipped byte is in the aarch64 variant: the x86 one would compile), and
// the node keeps serving.
TEST_CASE("ifunc nodes: with --trust-keys, signed libraries run and unsigned or tampered ones are refused") {
  namespace fs = std::filesystem;
  ferry::test::temp_dir dir;
  const fs::path keys = dir.path() / "trusted", signed_lib = dir.path() / "signed", tampered = dir.path() / "tampered";
  auto ferry_cli = [](const std::string& args) { return std::system((FERRY_CLI " " + args + " > /dev/null").c_str()); };
  REQUIRE(ferry_cli("sign --keygen " + (dir.path() / "ci").string()) == 0);
  fs::create_directory(keys);
  fs::rename(dir.path() / "ci.pub", keys / "ci.pub");
  for (const auto& lib : {signed_lib, tampered}) {
    fs::create_directory(lib);
    for (const auto& f : fs::directory_iterator(IFUNC_LIB_DIR))
      for (const char* name : {"hello.", "node_pp.", "result."})
        if (f.path().filename().string().starts_with(name)) fs::copy_file(f.path(), lib / f.path().filename());
  }
  const std::string key = (dir.path() / "ci.key").string();
  REQUIRE(ferry_cli("sign --ifunc --key " + key + " " + (signed_lib / "hello").string() + " " +
                    (signed_lib / "node_pp").string() + " " + (signed_lib / "result").string() + " " +
                    (tampered / "hello").string()) == 0);
  {
    const fs::path bc = tampered / "hello.aarch64-unknown-linux-gnu.bc";
    std::fstream f(bc, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(bc) / 2));
    const char byte = static_cast<char>(f.get() ^ 0x01);
    f.seekp(static_cast<std::streamoff>(fs::file_size(bc) / 2));
    f.put(byte);
  }
  CHECK(ferry_cli("sign --ifunc --check --trust-keys " + keys.string() + " " + (signed_lib / "hello").string()) == 0);
  CHECK(ferry_cli("sign --ifunc --check --trust-keys " + keys.string() + " " + (tampered / "hello").string()) != 0);

  ifunc_cluster c("shm", 2, {"--trust-keys", keys.string()});
  const object_id target = c.object_on(1, sizeof(hello_target_t));
  const ferry_ifunc_h plain = c.reg("hello");
  REQUIRE(c.send_to(plain, "unsigned", 8, 1, target) == kOk);
  CHECK(c.poll(nullptr) == code(ferry::errc::unsigned_code));
  CHECK(std::string(ferry_ifunc_last_error()).find("node 1") != std::string::npos);
  MESSAGE("unsigned: " << std::string(ferry_ifunc_last_error()));
  REQUIRE(ferry_ifunc_deregister(c.cx, plain) == kOk);
  const std::string tampered_dir = tampered.string(), signed_dir = signed_lib.string();
  const ferry_ifunc_h bad = c.reg("hello", false, tampered_dir.c_str());
  REQUIRE(c.send_to(bad, "tampered", 8, 1, target) == kOk);
  CHECK(c.poll(nullptr) == code(ferry::errc::bad_signature));
  MESSAGE("tampered: " << std::string(ferry_ifunc_last_error()));
  REQUIRE(ferry_ifunc_deregister(c.cx, bad) == kOk);
  CHECK(c.read<hello_target_t>(target).calls == 0);  // neither ran

  const ferry_ifunc_h hello = c.reg("hello", false, signed_dir.c_str());
  REQUIRE(c.send_to(hello, "signed", 6, 1, target) == kOk);
  CHECK(c.hello_text(target) == "signed");
  CHECK(c.read<hello_target_t>(target).calls == 1);

  // From node to node: node 0 sends node_pp on to node 1 with the code section it got, signature included.
  const ferry_ifunc_h pp = c.reg("node_pp", false, signed_dir.c_str());
  c.install_result(c.reg("result", false, signed_dir.c_str()));
  const object_id counter[2] = {c.object_on(0, 8), c.object_on(1, 8)};
  const node_pp_args_t a = pingpong_args(4, counter);
  std::uint64_t runs = 0;
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  CHECK(c.poll(&runs) == kOk);
  CHECK(runs == 4);

  // A NAME.sig that is not a signature fails the registration here.
  const fs::path junk = dir.path() / "junk";
  fs::create_directory(junk);
  for (const char* f : {"hello.x86_64-unknown-linux-gnu.bc", "hello.aarch64-unknown-linux-gnu.bc"})
    fs::copy_file(signed_lib / f, junk / f);
  std::ofstream(junk / "hello.sig") << "not 96 bytes";
  const std::string junk_dir = junk.string();
  ferry_ifunc_register_params p{};
  p.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME | FERRY_IFUNC_REGISTER_FIELD_LIB_DIR;
  p.name = "hello";
  p.lib_dir = junk_dir.c_str();
  ferry_ifunc_h h = 0;
  CHECK(ferry_ifunc_register(c.cx, &p, &h) == code(ferry::errc::bad_format));
  CHECK(std::string(ferry_ifunc_last_error()).find("hello.sig") != std::string::npos);
}

// A short NAME_main runs in place on the node's network thread after one
// short run on an executor (the node's dispatch policy); one that turns into
// a runaway there is still stopped by the node's fuel with fuel_exhausted,
// the node keeps serving, and that ifunc runs on an executor from then on.
TEST_CASE("ifunc nodes: short NAME_mains run in place, a runaway ends with fuel_exhausted and moves to the executor") {
  ifunc_cluster c("shm", 1, {"--fuel", "200000000", "--executors", "1"});
  const ferry_ifunc_h spin = c.reg("spin");
  const object_id count = c.object_on(0, 8);
  std::uint64_t sent = 0;  // messages, each counted once by the node
  // Short runs (an empty payload: count once, return).
  for (int i = 0; i < 10; ++i) {
    REQUIRE(c.send_to(spin, nullptr, 0, 0, count) == kOk);
    ++sent;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (c.read<std::uint64_t>(count) < sent && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
    REQUIRE(c.read<std::uint64_t>(count) == sent);
  }
  auto before = c.runs(sent);
  REQUIRE(before.first + before.second == sent);
  CHECK(before.second >= 1);  // the first run, at least
  CHECK(before.first >= 1);   // short runs after it, in place
  MESSAGE("10 short spin_main runs: " << before.first << " in place, " << before.second << " on the executor");

  // A runaway, where the last short run's verdict puts it (in place, unless
  // the machine's load made that run long): the fuel stops it.
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(c.send_to(spin, "x", 1, 0, count) == kOk);
  ++sent;
  CHECK(c.poll(nullptr) == code(ferry::errc::fuel_exhausted));
  auto after = c.runs(sent);
  MESSAGE("2e8 units of fuel ran out after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
          << " ms, " << c.read<std::uint64_t>(count) - (sent - 1) << " loop iterations, "
          << std::string(after.first > before.first ? "in place" : "on the executor"));
  CHECK(c.read<std::uint64_t>(count) > sent);

  // The node keeps serving: hello on its only executor.
  const ferry_ifunc_h hello = c.reg("hello");
  const object_id target = c.object_on(0, sizeof(hello_target_t));
  REQUIRE(c.send_to(hello, "after", 5, 0, target) == kOk);
  ++sent;
  CHECK(c.hello_text(target) == "after");

  // The runaway's run was long: the next spin runs on the executor.
  before = c.runs(sent);
  const std::uint64_t counted = c.read<std::uint64_t>(count);
  REQUIRE(c.send_to(spin, nullptr, 0, 0, count) == kOk);
  ++sent;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (c.read<std::uint64_t>(count) == counted && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  CHECK(c.read<std::uint64_t>(count) == counted + 1);
  after = c.runs(sent);
  CHECK(after.second == before.second + 1);
  CHECK(after.first == before.first);
}

// The engine for ifunc messages starts with the node (ifunc::registry::
// prepare), so its warm-up is over before the first message: the nodes say
// so before this process sends any, and that first message runs.
TEST_CASE("ifunc nodes: the ifunc engine warms up as the node starts, before any message") {
  ifunc_cluster c("shm", 2);
  auto warmed = [&](std::uint32_t n) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      const auto w = c.cluster->stats(n)["ifunc_warmed_up"];
      if (w == 1 || std::chrono::steady_clock::now() > until) return w;
      std::this_thread::sleep_for(10ms);
    }
  };
  CHECK(warmed(0) == 1);
  CHECK(warmed(1) == 1);
  CHECK(c.cluster->stats(0)["ifunc_contexts"] == 0);  // nothing was sent yet
  const ferry_ifunc_h hello = c.reg("hello");
  const object_id target = c.object_on(1, sizeof(hello_target_t));
  REQUIRE(c.send_to(hello, "warm", 4, 1, target) == kOk);
  CHECK(c.hello_text(target) == "warm");
}

// ferry_ifunc_wait: with nothing coming it returns NO_MESSAGE once its time
// has passed, having slept rather than spun (the waiting thread's CPU time
// is a fraction of the wait); a message that comes is taken and run.
TEST_CASE("ifunc nodes: ferry_ifunc_wait sleeps until a message comes or its time passes") {
  ifunc_cluster c("shm", 2);
  std::vector<std::uint64_t> buffer(1 << 13);
  auto thread_cpu = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  const auto cpu0 = thread_cpu();
  const auto wall0 = std::chrono::steady_clock::now();
  CHECK(ferry_ifunc_wait(c.cx, buffer.data(), buffer.size() * 8, nullptr, 300) == FERRY_IFUNC_NO_MESSAGE);
  const auto wall = std::chrono::steady_clock::now() - wall0;
  const auto cpu = thread_cpu() - cpu0;
  CHECK(wall >= 300ms);
  CHECK(wall < 10s);
  MESSAGE("a 300 ms wait with nothing coming: " << std::chrono::duration<double, std::milli>(wall).count()
                                                << " ms, of which on the CPU "
                                                << std::chrono::duration<double, std::milli>(cpu).count() << " ms");
  CHECK(cpu < wall / 2);  // a polling loop spends all of it

  // The ping-pong ends with its result sent here: the wait takes and runs it.
  const ferry_ifunc_h pp = c.reg("node_pp");
  const object_id counter[2] = {c.object_on(0, 8), c.object_on(1, 8)};
  node_pp_args_t a{};
  a.rounds = 3;
  for (int i = 0; i < 2; ++i) {
    a.node[i] = static_cast<std::uint32_t>(i);
    a.counter[i] = {counter[i].hi, counter[i].lo, 0};
  }
  c.install_result(c.reg("result"));
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  std::uint64_t runs = 0;
  const auto until = std::chrono::steady_clock::now() + 30s;
  ferry_ifunc_status st = FERRY_IFUNC_NO_MESSAGE;
  while (st == FERRY_IFUNC_NO_MESSAGE && std::chrono::steady_clock::now() < until)
    st = ferry_ifunc_wait(c.cx, buffer.data(), buffer.size() * 8, &runs, 5000);
  REQUIRE_MESSAGE(st == kOk, ferry_ifunc_last_error());
  CHECK(runs == 3);
  CHECK(ferry_ifunc_wait(nullptr, buffer.data(), buffer.size() * 8, nullptr, 1) == code(ferry::errc::invalid_argument));
}

// A context destroyed at its origin is told to every node, which drops its
// code and state, also a node that got its messages only from another node.
TEST_CASE("ifunc nodes: a context destroyed at its origin is dropped by every node") {
  ifunc_cluster c("shm", 2);
  // The number of origin contexts node `n` holds, once it is `expected` (or after 30 s).
  auto contexts = [&](std::uint32_t n, std::uint64_t expected) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      const auto held = c.cluster->stats(n)["ifunc_contexts"];
      if (held == expected || std::chrono::steady_clock::now() > until) return held;
      std::this_thread::sleep_for(10ms);
    }
  };
  // The ping-pong: node 0 gets it from here, node 1 only from node 0.
  const ferry_ifunc_h pp = c.reg("node_pp");
  const object_id counter[2] = {c.object_on(0, 8), c.object_on(1, 8)};
  node_pp_args_t a{};
  a.rounds = 3;  // the last run is on node 0, which sends the result
  for (int i = 0; i < 2; ++i) {
    a.node[i] = static_cast<std::uint32_t>(i);
    a.counter[i] = {counter[i].hi, counter[i].lo, 0};
  }
  const ferry_ifunc_h result = c.reg("result");
  const std::uint64_t zero = 0;
  REQUIRE(c.send_to(result, &zero, sizeof zero, 0, {}, FERRY_IFUNC_SEND_INSTALL) == kOk);
  REQUIRE(c.send_to(pp, &a, sizeof a, 0, counter[0]) == kOk);
  std::uint64_t runs = 0;
  REQUIRE(c.poll(&runs) == kOk);
  CHECK(runs == 3);
  CHECK(contexts(0, 1) == 1);
  CHECK(contexts(1, 1) == 1);

  ferry_ifunc_context_destroy(c.cx);
  CHECK(contexts(0, 0) == 0);
  CHECK(contexts(1, 0) == 0);

  // A new context works as before, on node 1 only.
  ferry_ifunc_context_params p{FERRY_IFUNC_CONTEXT_FIELD_NAME, "after"};
  REQUIRE(ferry_ifunc_context_create(&p, &c.cx) == kOk);
  const ferry_ifunc_h hello = c.reg("hello");
  const object_id target = c.object_on(1, sizeof(hello_target_t));
  REQUIRE(c.send_to(hello, "again", 5, 1, target) == kOk);
  CHECK(c.hello_text(target) == "again");
  CHECK(contexts(1, 1) == 1);
  CHECK(contexts(0, 0) == 0);
}
