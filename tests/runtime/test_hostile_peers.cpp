// A hostile peer against real `ferry node` processes (docs/security.md,
// "Hostile peers"): it joins the cluster the way a client does (rendezvous
// bootstrap, UCX, a hello) and sends bad input of every kind it can make —
// truncated, oversized and lying frames, wrong versions, unknown code,
// corrupt and re-sealed code objects, disallowed symbols, refs to missing
// objects, out-of-range offsets, forged and replayed answers, forged
// directory entries, floods. Every frame is built by wire/'s encoder and then
// mutated; body fields are located by encoding the same frame twice with one
// field changed (no second encoder here). Each case must be answered with its
// typed error or dropped and counted by the node (its --stats-file
// counters), while a normal client's calls keep succeeding and no node dies.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>

#include <ferry/code_registry.hpp>

#include "code_objects.hpp"
#include "real_cluster.hpp"
#include "wire/object_layout.hpp"

using namespace ferry;
using namespace rt_test;
using wire::frame;
using wire::frame_type;

namespace {

using bytes = std::vector<std::uint8_t>;
using clock_type = std::chrono::steady_clock;

// The frame header (wire/frames.hpp): u16 magic | u8 version | u8 type |
// u32 source | u64 call | u32 body length.
constexpr std::size_t kVersionAt = 2;
constexpr std::size_t kTypeAt = 3;
constexpr std::size_t kSourceAt = 4;
constexpr std::size_t kBodyLengthAt = 16;

// Where two encodings of one frame, differing in one field, first differ:
// that field's offset (a length-prefixed field: its length's offset).
std::size_t field_at(const frame& a, const frame& b) {
  const auto x = wire::encode(a), y = wire::encode(b);
  std::size_t i = 0;
  while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
  REQUIRE(i < std::min(x.size(), y.size()));
  return i;
}

template <class T>
bytes with(bytes b, std::size_t at, T value) {
  std::memcpy(b.data() + at, &value, sizeof value);
  return b;
}
// `b` cut (or grown with zeros) to `n` bytes, its header's body length told the truth.
bytes resized(bytes b, std::size_t n) {
  b.resize(n);
  return with(std::move(b), kBodyLengthAt, static_cast<std::uint32_t>(n - wire::kFrameHeaderSize));
}

object_id random_id(std::uint64_t salt) { return object_id{0x6e6f626f6479ULL ^ salt, 0x686f7374696c65ULL + salt}; }

// What a case must produce.
struct outcome {
  std::optional<errc> error;              ///< an error frame with this errc, under the case's call id
  std::optional<frame_type> answer;       ///< or an answer of this type
  std::string counter;                    ///< node counter that must grow by `count`
  std::uint64_t count = 1;
  std::uint32_t counter_node = 1;         ///< whose counter
  std::uint64_t answers = 1;              ///< how many answers (floods)
  std::optional<std::uint64_t> answer_call;  ///< the answers' call id, if not the case's
  std::uint64_t node1_bad_frames = 1;     ///< what node 1 counts when another node's counter is checked
};

outcome answered(errc e, std::uint64_t times = 1) {
  outcome o;
  o.error = e;
  o.count = 0;
  o.answers = times;
  return o;
}
// Answered with a frame of type `t` (under call id `call`, if given).
outcome answered_with(frame_type t, std::optional<std::uint64_t> call = std::nullopt) {
  outcome o;
  o.answer = t;
  o.count = 0;
  o.answer_call = call;
  return o;
}
// Answered with `e` and counted in `counter`.
outcome answered_and_counted(errc e, std::string counter) {
  outcome o;
  o.error = e;
  o.counter = std::move(counter);
  return o;
}
outcome malformed(errc e) { return answered_and_counted(e, "bad_frames"); }
// No answer; counted in `counter` of node `node`.
outcome dropped(std::string counter, std::uint64_t count = 1, std::uint32_t node = 1) {
  outcome o;
  o.counter = std::move(counter);
  o.count = count;
  o.counter_node = node;
  o.answers = 0;
  return o;
}

// Well formed frames claiming node 0 sent them: node 1 answers them (to
// node 0), whose `count` answers nobody asked for are counted late there.
outcome answered_to_node0(std::uint64_t count) {
  auto o = dropped("late_answers", count, 0);
  o.node1_bad_frames = 0;
  return o;
}

struct hostile_case {
  std::string name;
  outcome expect;
  // Sends the case's frames (to node 1 unless it says otherwise), answers under `call`.
  std::function<void(std::uint64_t call)> send;
};

const char* const kDropCounters[] = {"bad_frames", "dropped_frames", "refused_frames", "late_answers"};

}  // namespace

TEST_CASE("hostile peers: 50+ kinds of bad input, each answered with its typed error or dropped and counted") {
  node_cluster cl(cluster_setup{});
  const auto cell = cl.cell_on(1, 1000);    // the victim node's object
  const auto far = cl.cell_on(0, 500);      // another node's
  const auto big = rt_test::cell_on(*cl.rt, 1, 7);
  raw_peer peer(cl);
  const auto self = peer.self;

  // A normal client calls throughout, from its own thread.
  std::atomic<bool> attack_over{false};
  std::atomic<std::uint64_t> good_calls{0}, failed_calls{0};
  std::thread normal([&] {
    while (!attack_over.load()) {
      const auto a = cl.rt->invoke(&add, cell, 1).try_get();
      const auto b = cl.rt->invoke(&read_cell, far).try_get();
      const bool ok = a && *a == 1001 && b && *b == 500;
      (ok ? good_calls : failed_calls).fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  const code_object read_code = *REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&read_cell)));
  const code_object add_code = *REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&add)));
  auto invoke_of = [&](const code_object& code, std::uint64_t call) { return peer.invoke_frame(code, cell, call); };
  auto invoke_bytes = [&](std::uint64_t call, const std::function<void(wire::invoke_body&)>& change) {
    auto f = invoke_of(read_code, call);
    change(std::get<wire::invoke_body>(f.body));
    return wire::encode(f);
  };
  auto to_node1 = [&](const bytes& b) { peer.send(1, b); };
  auto send_frame = [&](frame f, std::uint32_t node = 1) { peer.send(node, wire::encode(f)); };
  auto request = [&](frame_type t, std::uint64_t call, wire::frame_body body) {
    send_frame({t, self, call, std::move(body)});
  };

  // Body fields located by encoding twice.
  const frame probe = invoke_of(read_code, 1);
  auto changed = [&](const std::function<void(wire::invoke_body&)>& change) {
    frame g = probe;
    change(std::get<wire::invoke_body>(g.body));
    return g;
  };
  const std::size_t symbol_length_at = field_at(probe, changed([](auto& b) { b.symbol += "x"; }));
  const std::size_t flags_at = field_at(probe, changed([](auto& b) { b.flags = 1; }));
  const std::size_t args_length_at = field_at(probe, changed([](auto& b) { b.args.push_back(0); }));
  const std::size_t blob_length_at = field_at(probe, changed([](auto& b) { b.code_blob.push_back(0); }));
  const frame error_probe{frame_type::error, self, 1, wire::error_body{errc::not_found, "x"}};
  const std::size_t errc_at =
      field_at(error_probe, {frame_type::error, self, 1, wire::error_body{errc::already_exists, "x"}});

  // Code objects a hostile peer might push.
  auto resealed = [&](const std::function<void(std::vector<std::uint8_t>&)> change) {
    code_object c = read_code;
    for (auto& v : c.variants) change(v.bitcode);
    c.seal();
    return c;
  };
  const code_object garbage_bitcode = resealed([](auto& bc) { bc.assign(bc.size(), 0x5a); });
  const code_object cut_bitcode = resealed([](auto& bc) { bc.resize(bc.size() / 2); });
  code_object fresh = read_code;  // the same code under a name (so an id) no node has seen
  fresh.name = "fresh copy";
  auto changed_invoke = [&](const code_object& code, std::uint64_t call,
                            const std::function<void(wire::invoke_body&)>& change) {
    auto f = invoke_of(code, call);
    change(std::get<wire::invoke_body>(f.body));
    return f;
  };
  // Takes the call's argument block (its target) like read_cell, so that it is run.
  const code_object byval_read = test::make_code("test::byval_read", "ferry_test_hostile_entry", read_code.args_size,
                                                 8, {test::host_variant("byval_read")});
  const code_object masked_read = test::make_code("test::masked_read", "ferry_test_hostile_entry", read_code.args_size,
                                                  8, {test::host_variant("masked_read")});
  code_object no_entry = read_code;
  no_entry.entry_symbol = "ferry_no_such_entry";
  const code_object aarch64_only = test::make_code("aarch64 only", read_code.symbol, read_code.args_size,
                                                   read_code.result_size, {test::aarch64_variant("arith")});
  auto hostile_invoke = [&](std::string_view module) {
    return [&, module = std::string(module)](std::uint64_t call) {
      to_node1(wire::encode(invoke_of(test::hostile_code(module), call)));
    };
  };
  // Serve code requests: an error, garbage, or the wrong code object.
  auto serve = [&](std::function<wire::frame_body()> answer_body, frame_type t) {
    peer.serve_code = [&, answer_body, t](const frame& req) -> std::optional<frame> {
      return frame{t, self, req.call, answer_body()};
    };
  };
  auto pull_case = [&](std::uint64_t call, object_id code, std::string symbol, wire::node_index holder) {
    to_node1(invoke_bytes(call, [&](auto& b) {
      b.code = code;
      b.symbol = std::move(symbol);
      b.code_holder = holder;
      b.code_blob.clear();
    }));
  };
  std::optional<frame> real_reply;  // kept for the replay case

  std::vector<hostile_case> cases = {
      // --- frames that do not decode ---
      {"empty frame", dropped("bad_frames"), [&](auto) { to_node1({}); }},
      {"one byte", dropped("bad_frames"), [&](auto) { to_node1({0xe1}); }},
      {"header cut at 19 bytes", dropped("bad_frames"),
       [&](auto c) { auto b = wire::encode(invoke_of(read_code, c)); b.resize(wire::kFrameHeaderSize - 1); to_node1(b); }},
      {"bad magic", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), 0, std::uint16_t{0xbeef})); }},
      {"version 0", malformed(errc::bad_version),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kVersionAt, std::uint8_t{0})); }},
      {"version 2", malformed(errc::bad_version),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kVersionAt, std::uint8_t{2})); }},
      {"version 255", malformed(errc::bad_version),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kVersionAt, std::uint8_t{255})); }},
      {"frame type 0", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kTypeAt, std::uint8_t{0})); }},
      {"frame type 20 (unknown)", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kTypeAt, std::uint8_t{20})); }},
      {"frame type 255", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kTypeAt, std::uint8_t{255})); }},
      {"invoke bytes under an object_get header", malformed(errc::bad_format),
       [&](auto c) {
         to_node1(with(wire::encode(invoke_of(read_code, c)), kTypeAt, static_cast<std::uint8_t>(frame_type::object_get)));
       }},
      {"body length one more than sent", malformed(errc::bad_format),
       [&](auto c) {
         auto b = wire::encode(invoke_of(read_code, c));
         to_node1(with(b, kBodyLengthAt, static_cast<std::uint32_t>(b.size() - wire::kFrameHeaderSize + 1)));
       }},
      {"body length one less than sent", malformed(errc::bad_format),
       [&](auto c) {
         auto b = wire::encode(invoke_of(read_code, c));
         to_node1(with(b, kBodyLengthAt, static_cast<std::uint32_t>(b.size() - wire::kFrameHeaderSize - 1)));
       }},
      {"body length 2^32-1", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kBodyLengthAt, ~std::uint32_t{0})); }},
      {"body length 0 with a body", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), kBodyLengthAt, std::uint32_t{0})); }},
      {"invoke cut in its body", malformed(errc::bad_format),
       [&](auto c) { auto b = wire::encode(invoke_of(read_code, c)); to_node1(resized(b, b.size() - 40)); }},
      {"invoke with a trailing byte", malformed(errc::bad_format),
       [&](auto c) { auto b = wire::encode(invoke_of(read_code, c)); to_node1(resized(b, b.size() + 1)); }},
      {"symbol length 2^32-1", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), symbol_length_at, ~std::uint32_t{0})); }},
      {"symbol length past the string limit", malformed(errc::bad_format),
       [&](auto c) {
         auto f = invoke_of(read_code, c);
         std::get<wire::invoke_body>(f.body).symbol.assign(70000, 's');
         to_node1(wire::encode(f));
       }},
      {"argument block length 2^63 (lying)", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), args_length_at, std::uint64_t{1} << 63)); }},
      {"argument block length one past the frame", malformed(errc::bad_format),
       [&](auto c) {
         auto f = invoke_of(read_code, c);
         const auto n = std::get<wire::invoke_body>(f.body).args.size();
         to_node1(with(wire::encode(f), args_length_at, static_cast<std::uint64_t>(n + 1)));
       }},
      {"code blob length one more than sent", malformed(errc::bad_format),
       [&](auto c) {
         auto f = invoke_of(read_code, c);
         const auto n = std::get<wire::invoke_body>(f.body).code_blob.size();
         to_node1(with(wire::encode(f), blob_length_at, static_cast<std::uint64_t>(n + 1)));
       }},
      {"unknown invoke flags", malformed(errc::bad_format),
       [&](auto c) { to_node1(with(wire::encode(invoke_of(read_code, c)), flags_at, std::uint8_t{0x80})); }},
      {"error frame with errc 0", malformed(errc::bad_format),
       [&](auto c) {
         to_node1(with(wire::encode({frame_type::error, self, c, wire::error_body{errc::not_found, "x"}}), errc_at,
                       std::uint16_t{0}));
       }},
      {"error frame with an errc beyond the last", malformed(errc::bad_format),
       [&](auto c) {
         to_node1(with(wire::encode({frame_type::error, self, c, wire::error_body{errc::not_found, "x"}}), errc_at,
                       std::uint16_t{999}));
       }},
      {"hello cut short", malformed(errc::bad_format),
       [&](auto c) {
         auto b = wire::encode({frame_type::hello, self, c, wire::hello_body{self, 0xff, "t", "", peer.t->address()}});
         to_node1(resized(b, b.size() - 3));
       }},
      {"object_get cut short", malformed(errc::bad_format),
       [&](auto c) {
         auto b = wire::encode({frame_type::object_get, self, c, wire::object_get_body{{cell.id, 0}, 8}});
         to_node1(resized(b, b.size() - 1));
       }},
      {"malformed frame from an unknown sender (4242)", dropped("bad_frames"),
       [&](auto c) { to_node1(with(with(wire::encode(invoke_of(read_code, c)), kVersionAt, std::uint8_t{9}), kSourceAt, std::uint32_t{4242})); }},
      {"malformed frame claiming node 0 sent it (the error goes to node 0, which drops it)",
       dropped("late_answers", 1, 0),
       [&](auto c) { to_node1(with(with(wire::encode(invoke_of(read_code, c)), kVersionAt, std::uint8_t{9}), kSourceAt, std::uint32_t{0})); }},
      {"oversized frame (256 MiB + 1)", dropped("dropped_frames"),
       [&](auto c) {
         auto b = wire::encode({frame_type::object_data, self, c, wire::object_data_body{}});
         to_node1(resized(b, wire::kMaxFrame + 1));
       }},

      // --- calls of code that is missing, corrupt, re-sealed or not allowed ---
      {"correct call from the hostile peer (control)", answered_with(frame_type::reply),
       [&](auto c) { to_node1(wire::encode(invoke_of(read_code, c))); }},
      {"unknown code id, the peer answers the code request with not_found", answered(errc::unknown_code),
       [&](auto c) {
         serve([] { return wire::error_body{errc::not_found, "no such code"}; }, frame_type::error);
         pull_case(c, random_id(c), read_code.symbol, wire::kNoNode);
       }},
      {"unknown code id, the peer serves garbage", answered(errc::unknown_code),
       [&](auto c) {
         serve([] { return wire::code_response_body{bytes(300, 0x42)}; }, frame_type::code_response);
         pull_case(c, random_id(c), read_code.symbol, wire::kNoNode);
       }},
      {"unknown code id, the peer serves another code object", answered(errc::unknown_code),
       [&](auto c) {
         serve([&] { return wire::code_response_body{add_code.encode()}; }, frame_type::code_response);
         pull_case(c, random_id(c), read_code.symbol, wire::kNoNode);
       }},
      {"unknown symbol by name, no code id", answered(errc::unknown_code),
       [&](auto c) {
         serve([] { return wire::error_body{errc::not_found, "no such symbol"}; }, frame_type::error);
         pull_case(c, object_id{}, "_Z13no_such_thingv", wire::kNoNode);
       }},
      {"unknown code id, code holder 4242 (nobody)", answered(errc::unknown_code),
       [&](auto c) { pull_case(c, random_id(c), read_code.symbol, 4242); }},
      // (Under the id of resident code a pushed copy is not even read: these
      // name code this node has not seen.)
      {"code blob of random bytes", answered(errc::bad_format),
       [&](auto c) { to_node1(invoke_bytes(c, [&](auto& b) { b.code = random_id(c); b.code_blob.assign(500, 0x17); })); }},
      {"code blob cut in half", answered(errc::bad_format),
       [&](auto c) {
         to_node1(wire::encode(changed_invoke(fresh, c, [](auto& b) { b.code_blob.resize(b.code_blob.size() / 2); })));
       }},
      {"code blob with a flipped bitcode byte (hash mismatch)", answered(errc::corrupt),
       [&](auto c) {
         to_node1(wire::encode(changed_invoke(fresh, c, [&](auto& b) {
           const auto& bc = fresh.variants.front().bitcode;  // flip a byte in the middle of the bitcode
           const auto at = std::search(b.code_blob.begin(), b.code_blob.end(), bc.begin(), bc.begin() + 64);
           REQUIRE(at != b.code_blob.end());
           at[static_cast<std::ptrdiff_t>(bc.size() / 2)] ^= 0xff;
         })));
       }},
      {"code blob whose id is not the one the call names", answered(errc::corrupt),
       [&](auto c) { to_node1(invoke_bytes(c, [&](auto& b) { b.code = random_id(c); })); }},
      {"re-sealed code object: bitcode replaced by garbage", answered(errc::bad_format),
       [&](auto c) { to_node1(wire::encode(invoke_of(garbage_bitcode, c))); }},
      {"re-sealed code object: bitcode cut in half", answered(errc::bad_format),
       [&](auto c) { to_node1(wire::encode(invoke_of(cut_bitcode, c))); }},
      {"code object whose entry symbol is not in its module", answered(errc::compile_error),
       [&](auto c) { to_node1(wire::encode(invoke_of(no_entry, c))); }},
      {"code object with only an aarch64 variant", answered(errc::no_matching_variant),
       [&](auto c) { to_node1(wire::encode(invoke_of(aarch64_only, c))); }},
      {"disallowed symbol: system()", answered(errc::policy_violation), hostile_invoke("call_system")},
      {"disallowed symbol: environ", answered(errc::policy_violation), hostile_invoke("read_environ")},
      {"disallowed symbol: dlopen()", answered(errc::policy_violation), hostile_invoke("call_dlopen")},
      {"inline assembly", answered(errc::policy_violation), hostile_invoke("inline_asm")},
      {"thread_local", answered(errc::policy_violation), hostile_invoke("tls")},
      {"a 1 GiB table", answered(errc::too_large), hostile_invoke("huge_table")},
      {"bitcode for another data layout", answered(errc::policy_violation), hostile_invoke("bad_layout")},
      {"a by-value argument copied from the call's context (bounds checks)", answered(errc::memory_fault),
       [&](auto c) { to_node1(wire::encode(invoke_of(byval_read, c))); }},
      {"a masked vector load from the call's context (bounds checks)", answered(errc::memory_fault),
       [&](auto c) { to_node1(wire::encode(invoke_of(masked_read, c))); }},
      {"signature hash that does not match the code", answered(errc::invalid_argument),
       [&](auto c) { to_node1(invoke_bytes(c, [](auto& b) { b.signature_hash ^= 1; })); }},
      {"argument block of the wrong size", answered(errc::invalid_argument),
       [&](auto c) { to_node1(invoke_bytes(c, [](auto& b) { b.args.resize(3); })); }},
      {"call on a missing object", answered(errc::not_found),
       [&](auto c) { to_node1(invoke_bytes(c, [&](auto& b) { b.target.id = random_id(c); std::memcpy(b.args.data(), &b.target.id, sizeof b.target.id); })); }},
      {"call at an offset past its object", answered(errc::out_of_bounds),
       [&](auto c) { to_node1(invoke_bytes(c, [](auto& b) { b.target.offset = 1 << 20; std::memcpy(b.args.data() + 16, &b.target.offset, 8); })); }},
      {"call at offset 2^64-1", answered(errc::out_of_bounds),
       [&](auto c) { to_node1(invoke_bytes(c, [](auto& b) { b.target.offset = ~0ULL; std::memcpy(b.args.data() + 16, &b.target.offset, 8); })); }},
      {"deadline already passed", answered(errc::timeout),
       [&](auto c) { to_node1(invoke_bytes(c, [](auto& b) { b.deadline_us = 1; })); }},
      {"forwarded more often than allowed", answered(errc::out_of_bounds),
       [&](auto c) { to_node1(invoke_bytes(c, [](auto& b) { b.hops = 65535; })); }},

      // --- object operations out of range ---
      {"object_get of a missing object", answered(errc::not_found),
       [&](auto c) { request(frame_type::object_get, c, wire::object_get_body{{random_id(c), 0}, 8}); }},
      {"object_get past the end", answered(errc::out_of_bounds),
       [&](auto c) { request(frame_type::object_get, c, wire::object_get_body{{cell.id, 4}, 8}); }},
      {"object_get whose offset + length wraps 2^64", answered(errc::out_of_bounds),
       [&](auto c) { request(frame_type::object_get, c, wire::object_get_body{{cell.id, ~0ULL - 3}, 8}); }},
      {"object_get of more than a frame may carry", answered(errc::too_large),
       [&](auto c) { request(frame_type::object_get, c, wire::object_get_body{{cell.id, 0}, wire::kMaxObjectGet + 1}); }},
      {"object_put past the end", answered(errc::out_of_bounds),
       [&](auto c) { request(frame_type::object_put, c, wire::object_put_body{{cell.id, 6}, bytes(8, 1)}); }},
      {"object_put to a missing object", answered(errc::not_found),
       [&](auto c) { request(frame_type::object_put, c, wire::object_put_body{{random_id(c), 0}, bytes(8, 1)}); }},
      {"object_create of 2^62 bytes (over the 2^48-byte object limit)", answered(errc::invalid_argument),
       [&](auto c) { request(frame_type::object_create, c, wire::object_create_body{random_id(c), 1ULL << 62}); }},
      {"object_create over the client's object", answered(errc::already_exists),
       [&](auto c) { request(frame_type::object_create, c, wire::object_create_body{cell.id, 8}); }},
      {"object_remove of a missing object", answered(errc::not_found),
       [&](auto c) { request(frame_type::object_remove, c, wire::object_remove_body{random_id(c)}); }},
      {"object_migrate of a missing object", answered(errc::not_found),
       [&](auto c) { request(frame_type::object_migrate, c, wire::dir_register_body{random_id(c), 0}); }},
      {"object_migrate to node 4242", answered(errc::invalid_argument),
       [&](auto c) { request(frame_type::object_migrate, c, wire::dir_register_body{big.id, 4242}); }},
      {"forged object_image from a client (garbage, no move under way)", answered(errc::invalid_argument),
       [&](auto c) {
         request(frame_type::object_image, c, wire::object_image_body{random_id(c), 100, 0, bytes(100, 0x33)});
       }},
      // The frames that end a move (docs/protocol.md): only nodes send them.
      {"object_commit from a client", answered_and_counted(errc::invalid_argument, "refused_frames"),
       [&](auto c) { request(frame_type::object_commit, c, wire::dir_register_body{cell.id, 1}); }},
      {"object_abort from a client (the client's object stays)", dropped("refused_frames"),
       [&](auto c) { request(frame_type::object_abort, c, wire::dir_register_body{cell.id, 1}); }},
      {"object_move_query from a client", dropped("refused_frames"),
       [&](auto c) { request(frame_type::object_move_query, c, wire::dir_register_body{cell.id, 1}); }},
      {"forged object_commit claiming node 0 sent it, no move under way (the not_found goes to node 0)",
       answered_to_node0(1),
       [&](auto c) { send_frame({frame_type::object_commit, 0, c, wire::dir_register_body{random_id(c), 1}}); }},
      // An image whose header is sound and whose checksum is not, "from node
      // 0", then a commit for it: the destination checks the whole image
      // before it acts on any of it (migration::on_image), so nothing is
      // pending to commit, and the object stays unknown on node 1. Both
      // answers (the image's error, the commit's not_found) go to node 0.
      {"forged object_image claiming node 0, its checksum wrong, then its commit: nothing is stored",
       answered_to_node0(2),
       [&](auto c) {
         const object_id id = random_id(c);
         std::vector<std::byte> image(layout::image_size_for(0, 64));
         layout::init(image, id, 0, 64);
         layout::seal(image);
         image.back() ^= std::byte{1};  // a data byte changed after the seal
         const auto* p = reinterpret_cast<const std::uint8_t*>(image.data());
         send_frame({frame_type::object_image, 0, c, wire::object_image_body{id, image.size(), 0, bytes(p, p + image.size())}});
         peer.progress_for(std::chrono::milliseconds(100));
         send_frame({frame_type::object_commit, 0, c, wire::dir_register_body{id, 1}});
         peer.progress_for(std::chrono::milliseconds(100));
         request(frame_type::object_get, c + 1, wire::object_get_body{{id, 0}, 8});
         auto got = peer.await(c + 1, std::chrono::seconds(10));
         REQUIRE(got.has_value());
         CHECK_ERRC(raw_peer::value_of(got), errc::not_found);
       }},
      // An image in parts "from node 0": the first part is taken (acked),
      // one out of order is refused and its image dropped; both answers go
      // to node 0, and nothing is left assembling on node 1.
      {"forged object_image parts claiming node 0, the second out of order: its image dropped",
       answered_to_node0(2),
       [&](auto c) {
         const object_id id = random_id(c);
         const auto assembling = [&](std::uint64_t want) {  // as node 1 writes its counters out
           const auto until = clock_type::now() + std::chrono::seconds(5);
           while (cl.stats(1).at("images_assembling") != want && clock_type::now() < until)
             peer.progress_for(std::chrono::milliseconds(20));
           return cl.stats(1).at("images_assembling");
         };
         send_frame({frame_type::object_image, 0, c, wire::object_image_body{id, 3 << 20, 0, bytes(1 << 20, 0x21)}});
         CHECK(assembling(1) == 1);
         send_frame({frame_type::object_image, 0, c, wire::object_image_body{id, 3 << 20, 2 << 20, bytes(1 << 20, 0x22)}});
         CHECK(assembling(0) == 0);
       }},
      {"code_request for an unknown code id", answered(errc::unknown_code),
       [&](auto c) { request(frame_type::code_request, c, wire::code_request_body{random_id(c), ""}); }},
      {"code_request by an unknown symbol", answered(errc::unknown_code),
       [&](auto c) { request(frame_type::code_request, c, wire::code_request_body{object_id{}, "_Z7nothingv"}); }},

      // --- directory and membership ---
      {"forged directory entry: the client's object owned by node 0", dropped("refused_frames"),
       [&](auto c) { request(frame_type::dir_register, c, wire::dir_register_body{cell.id, 0}); }},
      {"forged directory entry claiming node 0 sent it, owner 4242", dropped("refused_frames"),
       [&](auto c) {
         send_frame({frame_type::dir_register, 0, c, wire::dir_register_body{cell.id, 4242}});
       }},
      // A lookup's answer is a dir_register with call id 1.
      {"directory lookup of an object nobody has (answered: no owner)", answered_with(frame_type::dir_register, 1),
       [&](auto c) { request(frame_type::dir_lookup, c, wire::object_remove_body{random_id(c)}); }},
      {"shutdown from a peer", answered_and_counted(errc::invalid_argument, "refused_frames"),
       [&](auto c) { request(frame_type::shutdown, c, wire::empty_body{}); }},
      {"hello with an address that is no transport address", dropped("refused_frames"),
       [&](auto c) { request(frame_type::hello, c, wire::hello_body{self + 100, 0xff, "t", "", bytes(40, 0x99)}); }},

      // --- answers nobody asked for ---
      {"forged reply", dropped("late_answers"),
       [&](auto c) { request(frame_type::reply, c + (1ULL << 40), wire::reply_body{bytes(8, 1)}); }},
      {"forged error", dropped("late_answers"),
       [&](auto c) { request(frame_type::error, c + (1ULL << 40), wire::error_body{errc::peer_dead, "lies"}); }},
      {"forged ack", dropped("late_answers"),
       [&](auto c) { request(frame_type::ack, c + (1ULL << 40), wire::empty_body{}); }},
      {"forged object_data", dropped("late_answers"),
       [&](auto c) { request(frame_type::object_data, c + (1ULL << 40), wire::object_data_body{bytes(64, 2)}); }},
      {"forged code_response", dropped("late_answers"),
       [&](auto c) { request(frame_type::code_response, c + (1ULL << 40), wire::code_response_body{add_code.encode()}); }},
      {"replayed reply (the node's own, sent back)", dropped("late_answers"),
       [&](auto) {
         REQUIRE(real_reply.has_value());
         to_node1(wire::encode(*real_reply));
       }},

      // --- floods ---
      {"flood: 2000 truncated frames", dropped("bad_frames", 2000),
       [&](auto) {
         const bytes b(7, 0xf7);
         for (int i = 0; i < 2000; ++i) to_node1(b);
       }},
      {"flood: 1000 forged replies", dropped("late_answers", 1000),
       [&](auto c) {
         for (std::uint64_t i = 0; i < 1000; ++i) request(frame_type::reply, c + (2ULL << 40) + i, wire::reply_body{});
       }},
      {"flood: 300 calls past their deadline, each answered", answered(errc::timeout, 300),
       [&](auto c) {
         for (std::uint64_t i = 0; i < 300; ++i) to_node1(invoke_bytes(c, [](auto& b) { b.deadline_us = 1; }));
       }},
  };

  std::uint64_t next_call = 1000;
  std::vector<std::string> failures;
  const std::uint64_t jit_failures_before = cl.stats(1).at("jit_failures");
  for (auto& hc : cases) {
    CAPTURE(hc.name);
    const std::uint64_t call = next_call += 10;
    const auto before = cl.stats(hc.expect.counter_node);
    const auto before1 = cl.stats(1);
    peer.serve_code = nullptr;
    hc.send(call);
    // Its answers.
    for (std::uint64_t i = 0; i < hc.expect.answers; ++i) {
      auto a = peer.await(hc.expect.answer_call.value_or(call), std::chrono::seconds(10));
      CHECK_MESSAGE(a.has_value(), hc.name << ": no answer");
      if (!a) break;
      if (hc.expect.error) {
        CHECK_ERRC(raw_peer::value_of(a), *hc.expect.error);
      } else if (hc.expect.answer) {
        CHECK(a->type == *hc.expect.answer);
        if (a->type == frame_type::dir_register) CHECK(std::get<wire::dir_register_body>(a->body).owner == wire::kNoNode);
        if (a->type == frame_type::reply) {
          CHECK(REQUIRE_OK(raw_peer::value_of(a)) == 1000);
          real_reply = a;
        }
      }
    }
    // Its counter, as the node writes it out (every 50 ms while it changes).
    const auto until = clock_type::now() + std::chrono::seconds(5);
    auto after = cl.stats(hc.expect.counter_node);
    while (!hc.expect.counter.empty() && after[hc.expect.counter] < before.at(hc.expect.counter) + hc.expect.count &&
           clock_type::now() < until) {
      peer.progress_for(std::chrono::milliseconds(20));
      after = cl.stats(hc.expect.counter_node);
    }
    peer.progress_for(std::chrono::milliseconds(60));  // anything more it causes shows by now
    after = cl.stats(hc.expect.counter_node);
    auto after1 = cl.stats(1);
    for (const std::string counter : kDropCounters) {
      const std::uint64_t want = counter == hc.expect.counter ? hc.expect.count : 0;
      CHECK_MESSAGE(after[counter] - before.at(counter) == want, hc.name << ": " << counter);
      // A malformed frame that names node 0 as its sender: node 1 counted it too.
      if (hc.expect.counter_node != 1)
        CHECK_MESSAGE(after1[counter] - before1.at(counter) == (counter == "bad_frames" ? hc.expect.node1_bad_frames : 0u),
                      hc.name << ": node 1's " << counter);
    }
    peer.answers.clear();
  }

  // Code its JIT refused (a missing entry symbol, five policy violations)
  // is counted too, as the node writes its counters out.
  {
    const auto until = clock_type::now() + std::chrono::seconds(5);
    std::uint64_t refused_code = 0;
    while ((refused_code = cl.stats(1).at("jit_failures") - jit_failures_before) < 6 && clock_type::now() < until)
      peer.progress_for(std::chrono::milliseconds(20));
    CHECK(refused_code >= 6);
  }
  attack_over = true;
  normal.join();
  MESSAGE((cases.size() - 1) << " kinds of bad input (and one correct call); the normal client made "
                           << good_calls.load() << " correct calls meanwhile, " << failed_calls.load() << " failed");
  CHECK(cases.size() - 1 >= 50);
  CHECK(failed_calls.load() == 0);
  CHECK(good_calls.load() > 50);
  cl.serves(cell, 1000);
  CHECK(cl.rt->invoke(&read_cell, far).get() == 500);
  for (auto& n : cl.nodes) CHECK(::waitpid(n->pid(), nullptr, WNOHANG) == 0);  // no node died
}
