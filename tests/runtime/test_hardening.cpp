// Hardening across real `ferry node` processes (docs/security.md):
//  * traps end the call, not the node: null and far writes, division by
//    zero, __builtin_trap, unbounded recursion and a 1 GiB stack array each
//    fail their call with a typed error; the node, its objects and its
//    executors live on; a local array overrun is stopped at its frame's
//    canary before the function returns;
//  * bounds checks: a write or read through a forged pointer into another
//    object, the node's heap or the call's own context fails the call with
//    memory_fault and the memory keeps its value; correct code (memcpy,
//    stack arrays, chases) gives the right answers; --unchecked runs the
//    same code without checks (a forged write lands); a call through a
//    pointer to anything but one of its own functions fails with
//    memory_fault before the jump;
//  * metered code: a call that loops for ever (or makes 2^60 calls) ends with
//    fuel_exhausted, or with timeout at its deadline, and stops running;
//  * signed code: nodes with --trust-keys run only code signed by a trusted
//    key; unsigned, foreign-signed and tampered code is refused with its
//    errc before LLVM parses it (a preload of it too), and the node keeps
//    serving.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include <sys/wait.h>

#include <ferry/code_registry.hpp>
#include <ferry/code_signing.hpp>
#include <ferry/runtime.hpp>

#include "hostile.hpp"
#include "real_cluster.hpp"

using namespace ferry;
using namespace rt_test;

namespace {

using clock_type = std::chrono::steady_clock;

// Is mobile code still writing to `cell`? Two reads 300 ms apart, after
// 200 ms: a caller's own deadline may fire a moment before the node's.
bool still_running(node_cluster& cl, ref<std::uint64_t> cell) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto a = cl.rt->invoke(&read_cell, cell).get();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return cl.rt->invoke(&read_cell, cell).get() != a;
}

}  // namespace

TEST_CASE("containment: a fault in mobile code fails that call, and the node, its objects and executors live on") {
  node_cluster cl(cluster_setup{});
  const auto cell = cl.cell_on(1, 1000);
  const auto other = cl.cell_on(1, 7);
  cl.serves(cell, 1000);
  // Twice each: the first run is on an executor; a short failed run may
  // move the code onto the network thread (the dispatch policy), where the
  // second must be contained as well.
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    CHECK_ERRC(cl.rt->invoke(&write_at, cell, std::uint64_t{0}).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&write_at, cell, std::uint64_t{1} << 45).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&divide, cell, std::uint64_t{0}).try_get(), errc::arithmetic_fault);
    CHECK_ERRC(cl.rt->invoke(&trap_if, cell, std::uint64_t{1}).try_get(), errc::trapped);
    CHECK_ERRC(cl.rt->invoke(&recurse, cell, ~std::uint64_t{0}).try_get(), errc::stack_overflow);
    CHECK_ERRC(cl.rt->invoke(&huge_frame, cell, std::uint64_t{12345}).try_get(), errc::stack_overflow);
    cl.serves(other, 7);
    cl.serves(cell, 1000);
  }
  // The same functions, well behaved, still run.
  CHECK(cl.rt->invoke(&divide, cell, std::uint64_t{10}).get() == 100);
  CHECK(cl.rt->invoke(&trap_if, cell, std::uint64_t{0}).get() == 1000);
  CHECK(cl.rt->invoke(&recurse, cell, std::uint64_t{100}).get() > 1000);
  // The node process is the one we started: it never died.
  CHECK(::waitpid(cl.nodes[1]->pid(), nullptr, WNOHANG) == 0);
}

TEST_CASE("containment: a local array overrun ends its call at its first byte past the array, or at the frame's canary") {
  node_cluster cl(cluster_setup{});
  const auto cell = cl.cell_on(1, 1000);
  // Within the array: the right answer (0x41 + 0x50), both ways.
  CHECK(cl.rt->invoke(&overrun_local, cell, std::uint64_t{16}).get() == 1000 + 0x41 + 0x50);
  CHECK(cl.rt->invoke(&overrun_through, cell, std::uint64_t{16}).get() == 1000 + 0x41 + 0x50);
  // 17 to 64 bytes into a 16-byte array: past the frame's padding, over its
  // canary, saved frame pointer and return address (the call's own stack,
  // which ferry_bounds admits), then above the call's frames (which it
  // does not). Without canaries every one of these returned "ok": the
  // overrun went unnoticed. The first calls run on an executor, later
  // ones perhaps in place on the network thread.
  // Written by the function that owns the array, every byte past it is an
  // access computed from the array, outside it: the call ends at the first
  // (ferry_bounds_object, jit/contain.cpp). Written through its address read
  // back from memory, the writes are checked against the stack: the canary
  // notices the ones that reach it, before the return.
  for (const bool through : {false, true}) {
    CAPTURE(through);
    int at_canary = 0, at_array = 0, past_padding_ok = 0;
    std::string outcomes;  // per byte count: . right answer, a the array's end, c the canary, b the stack's end
    for (std::uint64_t n = 17; n <= 64; ++n) {
      CAPTURE(n);
      auto r = cl.rt->invoke(through ? &overrun_through : &overrun_local, cell, n).try_get();
      if (r.ok()) {
        past_padding_ok += n > 32;
        outcomes += '.';
        continue;
      }
      CAPTURE(r.error().describe());
      CHECK(r.error().code() == errc::memory_fault);
      const bool canary = r.error().describe().find("overwrote its stack frame") != std::string::npos;
      const bool array = r.error().describe().find("outside the local array or global of 16 bytes") != std::string::npos;
      at_canary += canary;
      at_array += array;
      outcomes += canary ? 'c' : array ? 'a' : 'b';
    }
    MESSAGE(std::string(through ? "through a pointer from memory" : "in place") << ", 17 to 64 bytes: " << outcomes);
    if (through) {
      CHECK(at_canary > 0);
      CHECK(at_array == 0);
    } else {
      CHECK(at_array == 48);  // every one, at its first byte past the array
    }
    CHECK(past_padding_ok == 0);
  }
  cl.serves(cell, 1000);
  CHECK(::waitpid(cl.nodes[1]->pid(), nullptr, WNOHANG) == 0);
}

namespace {
// A table for memory_work on `node`: a permutation of 0..n-1, then n words of scratch.
std::vector<std::uint64_t> work_table(std::uint64_t n) {
  std::vector<std::uint64_t> t(2 * n);
  for (std::uint64_t i = 0; i < n; ++i) t[i] = (i * 7 + 3) % n;  // n prime to 7
  return t;
}
ref<std::uint64_t> table_on(node_cluster& cl, std::uint32_t node, const std::vector<std::uint64_t>& t) {
  auto r = cl.rt->objects().create<std::uint64_t>(t.size(), on_node(node));
  cl.rt->objects().put(r, std::span<const std::uint64_t>(t));
  return r;
}
}  // namespace

TEST_CASE("bounds checks: a forged pointer fails its call with memory_fault, and the memory it aimed at is intact") {
  node_cluster cl({}, 3);
  const auto cell = cl.cell_on(1, 1000);
  const auto other = cl.cell_on(1, 7);
  const std::uint64_t other_at = cl.rt->invoke(&address_of, other).get();
  const std::uint64_t heap_at = cl.rt->invoke(&fetched_address, cell).get();
  REQUIRE(other_at != 0);
  for (int round = 0; round < 2; ++round) {  // on an executor, then perhaps on the network thread
    CAPTURE(round);
    // Mapped memory the call was not handed: before bounds checks, these writes landed.
    CHECK_ERRC(cl.rt->invoke(&write_at, cell, other_at).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&write_at, cell, heap_at).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&write_context, cell).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&read_at, cell, other_at).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&read_at, cell, heap_at).try_get(), errc::memory_fault);
    // Unmapped memory: the check comes first, with the same errc the signal gave.
    CHECK_ERRC(cl.rt->invoke(&write_at, cell, std::uint64_t{0}).try_get(), errc::memory_fault);
    CHECK_ERRC(cl.rt->invoke(&read_at, cell, std::uint64_t{1} << 45).try_get(), errc::memory_fault);
    cl.serves(other, 7);
    cl.serves(cell, 1000);
  }
  // A well-behaved read of its own object still runs.
  CHECK(cl.rt->invoke(&read_at, other, other_at).get() == 14);
  CHECK(::waitpid(cl.nodes[1]->pid(), nullptr, WNOHANG) == 0);

  // Correct code under the checks: memcpy within an object, stack arrays,
  // a pointer chase, double indirection; the multi-node chase (forwards).
  for (const std::uint64_t n : {1ull, 5ull, 257ull, 4099ull}) {
    CAPTURE(n);
    const auto t = work_table(n);
    CHECK(cl.rt->invoke(&memory_work, table_on(cl, 2, t), n).get() == reference_work(t, n));
  }
  const auto chase_t = make_chase_table(*cl.rt, 999, 3);
  for (std::uint32_t depth : {1u, 64u, 1024u})
    CHECK(cl.rt->invoke(&chase, chase_t.shards[1], 5, depth).get() == chase_locally(chase_t.next.data(), 5, depth));
}

TEST_CASE("bounds checks: a call through a forged function pointer fails with memory_fault before the jump") {
  node_cluster cl({}, 2);
  const auto cell = cl.cell_on(1, 1000);
  // Through a pointer to one of its own functions: runs.
  CHECK(cl.rt->invoke(&call_through, cell, std::uint64_t{0}).get() == 2000);
  // A function of another code object on the same node (contained code, but
  // not this one's: before the check, this call ran it and answered 3000),
  // the middle of that function, an unmapped page, an address that is a
  // constant in the bitcode (1: call_through calls 0x1000).
  const std::uint64_t other = cl.rt->invoke(&function_address, cell).get();
  REQUIRE(other != 0);
  for (const std::uint64_t target : {other, other + 1, std::uint64_t{0x1000}, std::uint64_t{1}}) {
    CAPTURE(target);
    const auto r = cl.rt->invoke(&call_through, cell, target).try_get();
    CHECK_ERRC(r, errc::memory_fault);
    if (!r) CHECK(r.error().message().find("not a function of its code object") != std::string::npos);
    cl.serves(cell, 1000);
  }
  CHECK(cl.rt->invoke(&call_through, cell, std::uint64_t{0}).get() == 2000);
  CHECK(::waitpid(cl.nodes[1]->pid(), nullptr, WNOHANG) == 0);
}

TEST_CASE("bounds checks: on a persistent node cx.local admits the bytes it handed out, which the call's end seals") {
  // A write past what cx.local was asked for fails with memory_fault. What
  // the calls were handed is sealed (the checksum blocks it touches, not
  // the whole image), so the object's file stays valid across a restart,
  // also after a call that took a pointer per word.
  constexpr std::uint64_t kWords = 3 * 8192;  // three 64 KiB checksum blocks
  cluster_setup setup;
  setup.persistent = true;
  node_cluster cl(setup);
  std::vector<std::uint64_t> expected(kWords);
  for (std::uint64_t i = 0; i < kWords; ++i) expected[i] = i;
  const auto obj = cl.rt->objects().create<std::uint64_t>(kWords, on_node(1));
  cl.rt->objects().put(obj, std::span<const std::uint64_t>(expected));
  const ref<std::uint64_t> at{obj.id, 20000 * 8};  // in the third block
  const auto write_word_at = [&](std::uint64_t asked, std::uint64_t index, std::uint64_t value) {
    return cl.rt->invoke(&write_word, at, asked, index, value).try_get();
  };
  CHECK(REQUIRE_OK(write_word_at(1, 0, 77)) == 77);
  expected[20000] = 77;
  CHECK_ERRC(write_word_at(1, 1, 88), errc::memory_fault);
  CHECK_ERRC(write_word_at(4, 4, 88), errc::memory_fault);
  CHECK(REQUIRE_OK(write_word_at(4, 3, 99)) == 77);
  expected[20003] = 99;
  // A pointer per word, every other word across the first two blocks and
  // into the third: past kMaxWrittenRanges ranges (which do not adjoin) the
  // rest of the object is handed out and sealed whole. Adjoining words
  // would make one range.
  for (const std::uint64_t stride : {1, 2}) {
    CAPTURE(stride);
    constexpr std::uint64_t kBumped = 10000;
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < kBumped; ++i) sum += ++expected[i * stride];
    CHECK(cl.rt->invoke(&bump_each, ref<std::uint64_t>{obj.id, 0}, kBumped, stride).get() == sum);
  }
  CHECK(cl.rt->objects().get(obj, kWords) == expected);
  // Reopened from its file, whose checksum is checked: what the calls
  // wrote was sealed.
  REQUIRE(cl.restart(1));
  CHECK(cl.rt->objects().get(obj, kWords) == expected);
  CHECK(REQUIRE_OK(write_word_at(1, 0, 5)) == 5);
}

TEST_CASE("bounds checks: --unchecked (the trusted policy) compiles them out") {
  // Proof that nothing is checked: a forged write into another object lands
  // (harmless here: the test owns both objects and reads the damage back).
  node_cluster cl({"--unchecked"});
  const auto cell = cl.cell_on(1, 1000);
  const auto other = cl.cell_on(1, 7);
  const std::uint64_t other_at = cl.rt->invoke(&address_of, other).get();
  CHECK(cl.rt->invoke(&read_at, cell, other_at).get() == 1007);
  CHECK(cl.rt->invoke(&write_at, cell, other_at).get() == 1000);
  CHECK(cl.rt->invoke(&read_cell, other).get() == 1);
  // A call through a pointer to another code object's function runs it.
  CHECK(cl.rt->invoke(&call_through, cell, cl.rt->invoke(&function_address, cell).get()).get() == 3000);
  // Unmapped memory is still contained by the fault handler.
  CHECK_ERRC(cl.rt->invoke(&write_at, cell, std::uint64_t{0}).try_get(), errc::memory_fault);
  const auto t = work_table(257);
  CHECK(cl.rt->invoke(&memory_work, table_on(cl, 1, t), 257).get() == reference_work(t, 257));
}

TEST_CASE("metering: runaway code ends with fuel_exhausted, and stops") {
  node_cluster cl({"--fuel", "200000000", "--executors", "2"});
  const auto cell = cl.cell_on(1, 0);
  const auto t0 = clock_type::now();
  CHECK_ERRC(cl.rt->invoke(&loop_forever, cell).try_get(), errc::fuel_exhausted);
  const auto took = clock_type::now() - t0;
  MESSAGE("2e8 units of fuel ran out after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                             << " ms");
  CHECK(took < std::chrono::seconds(20));
  CHECK_FALSE(still_running(cl, cell));
  // 2^60 calls and no loop: calls are charged too.
  CHECK_ERRC(cl.rt->invoke(&fan_out, cell, std::uint64_t{60}).try_get(), errc::fuel_exhausted);
  // More runaway calls than executors, one after the other: each frees its executor.
  for (int i = 0; i < 3; ++i) CHECK_ERRC(cl.rt->invoke(&loop_forever, cell).try_get(), errc::fuel_exhausted);
  CHECK(cl.rt->invoke(&spin, cell, std::uint64_t{1000}).try_get().has_value());
  const auto v = cl.rt->invoke(&read_cell, cell).get();
  CHECK(cl.rt->invoke(&add, cell, 1).get() == v + 1);
}

TEST_CASE("metering: with unlimited fuel, the call's deadline stops runaway code and frees the executor") {
  node_cluster cl({"--fuel", "0", "--executors", "1"});
  const auto cell = cl.cell_on(1, 0);
  call_options o;
  o.deadline = std::chrono::milliseconds(1500);
  for (int i = 0; i < 2; ++i) {  // one executor: the second call runs only if the first let go
    const auto t0 = clock_type::now();
    CHECK_ERRC(cl.rt->invoke_with(o, &loop_forever, cell).try_get(), errc::timeout);
    CHECK(clock_type::now() - t0 < std::chrono::seconds(10));
    CHECK_FALSE(still_running(cl, cell));
  }
  CHECK(cl.rt->invoke(&spin, cell, std::uint64_t{1000}).try_get().has_value());
}

namespace {
// `ferry node ARGS` that must refuse to start: its exit status 1 and what it printed.
std::string refused_start(const std::string& args) {
  test::temp_dir d;
  const std::string cmd = std::string(FERRY_CLI) + " node --index 0 --rendezvous " + (d.path() / "rv").string() + " " +
                          args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  return out;
}
}  // namespace

TEST_CASE("node settings that cannot be safe are refused at start, saying why") {
  CHECK(refused_start("--untrusted").find("--untrusted needs --trust-keys") != std::string::npos);
  test::temp_dir keys;
  REQUIRE_OK(write_signing_key(keys.path() / "k", generate_signing_key()));
  CHECK(refused_start("--untrusted --unmetered --trust-keys " + keys.path().string()).find("--unmetered") !=
        std::string::npos);
  CHECK(refused_start("--untrusted --unchecked --trust-keys " + keys.path().string()).find("--unchecked") !=
        std::string::npos);
  test::temp_dir empty;
  CHECK(refused_start("--trust-keys " + empty.path().string()).find("holds no .pub key") != std::string::npos);
}

TEST_CASE("signed code: nodes with --trust-keys run only code signed by a trusted key") {
  test::temp_dir keys;
  const auto trusted = generate_signing_key();
  const auto stranger = generate_signing_key();
  std::filesystem::create_directory(keys.path() / "trusted");
  REQUIRE_OK(write_signing_key(keys.path() / "trusted" / "ci", trusted));
  REQUIRE_OK(write_signing_key(keys.path() / "stranger", stranger));
  CHECK(REQUIRE_OK(read_secret_key(keys.path() / "trusted" / "ci.key")) == trusted.secret_key);
  CHECK(REQUIRE_OK(read_trusted_keys(keys.path() / "trusted")).size() == 1);
  CHECK_ERRC(result<void>(write_signing_key(keys.path() / "stranger", stranger)), errc::already_exists);

  SUBCASE("real nodes, untrusted, with keys") {
    node_cluster cl({"--untrusted", "--trust-keys", (keys.path() / "trusted").string()});
    const auto cell = cl.cell_on(1, 4242);
    // This test program's own code is not signed: refused for a call, and
    // for a preload (runtime::preload) with the same error.
    CHECK_ERRC(cl.rt->invoke(&add, cell, 1).try_get(), errc::unsigned_code);
    CHECK_ERRC(cl.rt->preload(&sum_two, on_node{1}).try_get(), errc::unsigned_code);

    raw_peer peer(cl);
    const code_object original = *REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&read_cell)));
    CHECK_ERRC(peer.read_with(original, cell, 1), errc::unsigned_code);

    code_object foreign = original;
    foreign.sign(stranger.secret_key);
    CHECK_ERRC(peer.read_with(foreign, cell, 2), errc::untrusted_signer);

    // Code changed after signing, its hashes recomputed: the signature no
    // longer matches. The bytes are not bitcode at all: had LLVM parsed
    // them, the error would be bad_format.
    code_object tampered = original;
    tampered.sign(trusted.secret_key);
    for (auto& v : tampered.variants) v.bitcode.assign(v.bitcode.size(), 0x5a);
    tampered.seal();
    CHECK_ERRC(peer.read_with(tampered, cell, 3), errc::bad_signature);

    code_object good = original;
    good.sign(trusted.secret_key);
    REQUIRE_OK(good.verify_signature(std::span(&trusted.public_key, 1)));
    CHECK(REQUIRE_OK(peer.read_with(good, cell, 4)) == 4242);
    CHECK(REQUIRE_OK(peer.read_with(good, cell, 5)) == 4242);
    // Still refusing, still serving.
    CHECK_ERRC(cl.rt->invoke(&add, cell, 1).try_get(), errc::unsigned_code);
    CHECK(cl.rt->invoke(&read_cell, cell).get() == 4242);  // the same code as the signed copy: resident
  }
}
