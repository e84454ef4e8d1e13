#include "raw_chase.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <span>
#include <thread>

#include "common/raw_ucx.hpp"
#include "core/anonymous_mapping.hpp"
#include "ifunc_chase.h"

extern "C" {
extern const unsigned char ferry_xchase_bc[];  // xchase.c, built by `ferry ifunc build`
extern const unsigned long ferry_xchase_bc_size;
}

namespace chase_raw {
namespace {

namespace fs = std::filesystem;
using ferry::bench::raw_worker;
using ferry::bench::ucx_error;
using ferry::errc;
using ferry::make_error;
using ferry::result;

constexpr unsigned kChaseAm = 11;   // client -> server, server -> server
constexpr unsigned kAnswerAm = 12;  // server -> client
constexpr unsigned kStopAm = 13;    // client -> server
constexpr unsigned kParkAm = 14;    // client -> server: u64 1 = park, 0 = serve
constexpr unsigned kReadyAm = 15;   // server -> client: u64 its index, once connected to every peer
constexpr auto kWaitLimit = std::chrono::seconds(30);
// Each process's ifunc receive buffer: the first xchase message to it
// carries the code (a few KiB of bitcode).
constexpr std::size_t kIfuncBufferWords = 8192;


/// What travels between the processes of the am baseline.
struct chase_msg {
  std::uint64_t index;
  std::uint32_t depth;
  std::uint32_t tag;
};

/// A process's published file: [u64 slots address][u64 ifunc buffer
/// address][u64 rkey length][rkey][worker address]; the client's has no
/// slots (address 0), and without the ifunc mode no buffer (0, no rkey).
fs::path server_file(const fs::path& dir, std::uint32_t s) { return dir / ("raw-server-" + std::to_string(s)); }
fs::path client_file(const fs::path& dir) { return dir / "raw-client"; }

void publish_file(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  const fs::path tmp = file.string() + ".tmp";
  std::ofstream(tmp, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  fs::rename(tmp, file);
}

result<std::vector<std::uint8_t>> wait_for(const fs::path& file) {
  const auto limit = std::chrono::steady_clock::now() + kWaitLimit;
  while (std::chrono::steady_clock::now() < limit) {
    std::ifstream in(file, std::ios::binary);
    std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
    if (!bytes.empty()) return bytes;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return make_error(errc::timeout, "nobody published " + file.string());
}

struct peer_info {
  std::uint64_t slots_address = 0;
  std::uint64_t buffer_address = 0;
  std::vector<std::uint8_t> rkey;
  std::vector<std::uint8_t> address;
};

result<peer_info> parse_peer_file(const std::vector<std::uint8_t>& bytes) {
  peer_info info;
  std::uint64_t rkey_len = 0;
  if (bytes.size() < 24) return make_error(errc::bad_format, "short raw peer file");
  std::memcpy(&info.slots_address, bytes.data(), 8);
  std::memcpy(&info.buffer_address, bytes.data() + 8, 8);
  std::memcpy(&rkey_len, bytes.data() + 16, 8);
  if (rkey_len > bytes.size() - 24) return make_error(errc::bad_format, "raw peer file: bad rkey length");
  info.rkey.assign(bytes.begin() + 24, bytes.begin() + 24 + static_cast<std::ptrdiff_t>(rkey_len));
  info.address.assign(bytes.begin() + 24 + static_cast<std::ptrdiff_t>(rkey_len), bytes.end());
  return info;
}

/// `memory` registered for remote access: slots (`slots` words, may be 0)
/// then the ifunc buffer (the rest); publishes `file` for the peers.
class published_memory {
 public:
  result<void> publish(raw_worker& w, std::span<std::uint64_t> memory, std::size_t slots, const fs::path& file) {
    ctx_ = w.context();
    std::vector<std::uint8_t> bytes(24);
    const auto base = reinterpret_cast<std::uint64_t>(memory.data());
    const std::uint64_t slots_address = slots ? base : 0;
    const std::uint64_t buffer_address = memory.size() > slots ? base + slots * 8 : 0;
    std::memcpy(bytes.data(), &slots_address, 8);
    std::memcpy(bytes.data() + 8, &buffer_address, 8);
    if (!memory.empty()) {
      ucp_mem_map_params_t mp{};
      mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
      mp.address = memory.data();
      mp.length = memory.size() * 8;
      if (auto st = ucp_mem_map(ctx_, &mp, &memh_); st != UCS_OK) return ucx_error("mem map", st);
      void* rkey = nullptr;
      std::size_t rkey_len = 0;
      if (auto st = ucp_rkey_pack(ctx_, memh_, &rkey, &rkey_len); st != UCS_OK) return ucx_error("rkey pack", st);
      const std::uint64_t len = rkey_len;
      std::memcpy(bytes.data() + 16, &len, 8);
      bytes.insert(bytes.end(), static_cast<std::uint8_t*>(rkey), static_cast<std::uint8_t*>(rkey) + rkey_len);
      ucp_rkey_buffer_release(rkey);
    }
    FERRY_TRY(auto address, w.address());
    bytes.insert(bytes.end(), address.begin(), address.end());
    publish_file(file, bytes);
    return {};
  }
  ~published_memory() {
    if (memh_) ucp_mem_unmap(ctx_, memh_);
  }

 private:
  ucp_context_h ctx_ = nullptr;
  ucp_mem_h memh_ = nullptr;
};

/// Whether this process yields while it waits (set once: oversubscribed()).
bool g_yield_while_waiting = false;

/// Complete the sends on `ep` (what xchase_main calls after each send).
ucs_status_t flush_ep(ucp_worker_h worker, ucp_ep_h ep) {
  ucp_request_param_t rp{};
  const ucs_status_ptr_t r = ucp_ep_flush_nbx(ep, &rp);
  if (UCS_PTR_IS_ERR(r)) return UCS_PTR_STATUS(r);
  if (r == nullptr) return UCS_OK;
  ucs_status_t st;
  while ((st = ucp_request_check_status(r)) == UCS_INPROGRESS)
    if (ucp_worker_progress(worker) == 0 && g_yield_while_waiting) std::this_thread::yield();
  ucp_request_free(r);
  return st;
}

ferry::status ifunc_error(std::string_view what, ucs_status_t st) {
  return make_error(errc::invalid_argument,
                    std::string(what) + ": " + ferry_ucp_ifunc_last_error() + " (" + ucs_status_string(st) + ")");
}

/// This process's side of the ifunc mode: the xchase ifunc registered from
/// the bitcode built into this program, its message, and the target_args
/// every xchase_main here runs with.
struct ifunc_side {
  ucp_context_h ctx = nullptr;
  ucp_ifunc_h h = nullptr;
  xchase_target_t t{};

  result<void> init(raw_worker& w, std::uint32_t index, std::uint32_t shards, const std::uint64_t* slots) {
    ctx = w.context();
    ucp_ifunc_reg_param_t p{};
    p.name = const_cast<char*>("xchase");
    p.pure = 1;
    p.llvm_bc = 1;
    ucp_llvm_bc_t bc{};
    bc.triple = const_cast<char*>("x86_64-unknown-linux-gnu");
    bc.bc = const_cast<unsigned char*>(ferry_xchase_bc);
    bc.size = static_cast<std::uint32_t>(ferry_xchase_bc_size);
    if (auto st = ucp_register_ifunc_im(ctx, p, &bc, 1, nullptr, 0, &h); st != UCS_OK)
      return ifunc_error("register xchase", st);
    xchase_args_t a{};
    if (auto st = ucp_ifunc_msg_create(h, &a, sizeof a, &t.msg); st != UCS_OK)
      return ifunc_error("xchase message", st);
    t.index = index;
    t.shards = shards;
    t.slots = slots;
    t.worker = w.worker();
    t.flush = &flush_ep;
    g_yield_while_waiting = oversubscribed(shards);
    return {};
  }
  /// Peer `k` (a server, or the client at `shards`).
  result<void> add_peer(std::uint32_t k, ucp_ep_h ep, const peer_info& info) {
    if (k >= XCHASE_MAX_PEERS) return make_error(errc::invalid_argument, "too many peers");
    t.ep[k] = ep;
    t.buffer[k] = info.buffer_address;
    if (auto st = ucp_ep_rkey_unpack(ep, info.rkey.data(), &t.rkey[k]); st != UCS_OK)
      return ucx_error("rkey unpack", st);
    return {};
  }
  /// Run what came into `buffer` (nothing: false).
  result<bool> poll(std::uint64_t* buffer) {
    const ucs_status_t st = ucp_poll_ifunc(ctx, buffer, kIfuncBufferWords * 8, &t, t.worker);
    if (st == UCS_OK) return true;
    if (st == UCS_ERR_NO_MESSAGE) return false;
    return ifunc_error("ifunc poll", st);
  }
  ~ifunc_side() {
    for (ucp_rkey_h k : t.rkey)
      if (k) ucp_rkey_destroy(k);
    if (h) {
      ucp_ifunc_msg_free(t.msg);
      ucp_deregister_ifunc(ctx, h);
    }
  }
};

result<void> send_am(ucp_ep_h to, unsigned id, const void* data, std::size_t length) {
  ucp_request_param_t rp{};
  rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK;
  rp.cb.send = &ferry::bench::free_ucx_request;
  const ucs_status_ptr_t r = ucp_am_send_nbx(to, id, nullptr, 0, data, length, &rp);
  if (UCS_PTR_IS_ERR(r)) return ucx_error("am send", UCS_PTR_STATUS(r));
  return {};
}

// The server's state, reached from its AM handlers.
struct server_state {
  std::uint32_t index = 0, shards = 1;
  // The shard's slots, then the ifunc buffer: one mapping in huge pages, as
  // a ferry node keeps a large object (core/anonymous_mapping.hpp),
  // so that both chase through memory of the same kind.
  ferry::anonymous_mapping memory;
  std::span<std::uint64_t> slots;
  std::vector<ucp_ep_h> servers;  // by shard
  ucp_ep_h client = nullptr;
  std::deque<std::pair<ucp_ep_h, chase_msg>> outbox;  // sent after progress() returns
  std::deque<chase_msg> answers;
  bool stop = false;
  bool parked = false;  // while other modes run: blocked in wait(), not polling

  // The pre-deployed handler: chase through this shard, then pass it on.
  static ucs_status_t on_chase(void* arg, const void*, std::size_t, void* data, std::size_t length,
                               const ucp_am_recv_param_t*) {
    auto* s = static_cast<server_state*>(arg);
    if (length != sizeof(chase_msg)) return UCS_OK;
    chase_msg m;
    std::memcpy(&m, data, sizeof m);
    for (; m.depth > 0; --m.depth) {
      const auto owner = static_cast<std::uint32_t>(m.index % s->shards);
      if (owner != s->index) {
        s->outbox.emplace_back(s->servers[owner], m);
        return UCS_OK;
      }
      m.index = s->slots[m.index / s->shards];
    }
    s->answers.push_back(m);
    return UCS_OK;
  }
  static ucs_status_t on_stop(void* arg, const void*, std::size_t, void*, std::size_t, const ucp_am_recv_param_t*) {
    static_cast<server_state*>(arg)->stop = true;
    return UCS_OK;
  }
  static ucs_status_t on_park(void* arg, const void*, std::size_t, void* data, std::size_t length,
                              const ucp_am_recv_param_t*) {
    std::uint64_t park = 0;
    if (length == sizeof park) std::memcpy(&park, data, sizeof park);
    static_cast<server_state*>(arg)->parked = park != 0;
    return UCS_OK;
  }
};

}  // namespace

result<void> serve(const fs::path& dir, const std::string& tls, std::uint32_t index, std::uint32_t shards,
                   std::vector<std::uint64_t> slots, bool ifunc, int idle_timeout_ms) {
  server_state s;
  s.index = index;
  s.shards = shards;
  const std::size_t n_slots = slots.size();
  const std::size_t words = std::max<std::size_t>(n_slots + (ifunc ? kIfuncBufferWords : 0), 1);
  FERRY_TRY(s.memory, ferry::anonymous_mapping::map(words * 8));
  s.slots = {reinterpret_cast<std::uint64_t*>(s.memory.data()), words};
  std::copy(slots.begin(), slots.end(), s.slots.begin());
  slots = {};
  FERRY_TRY(auto w, raw_worker::create(tls, UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP));
  FERRY_TRY_STATUS(w->on_am(kChaseAm, &server_state::on_chase, &s));
  FERRY_TRY_STATUS(w->on_am(kStopAm, &server_state::on_stop, &s));
  FERRY_TRY_STATUS(w->on_am(kParkAm, &server_state::on_park, &s));
  ifunc_side xchase;
  if (ifunc) FERRY_TRY_STATUS(xchase.init(*w, index, shards, s.slots.data()));

  // The slots for the get baseline and the ifunc buffer, for the peers.
  published_memory memory;
  FERRY_TRY_STATUS(memory.publish(*w, s.slots, n_slots, server_file(dir, index)));

  // Endpoints to every server (itself included: never used) and the client.
  for (std::uint32_t k = 0; k < shards; ++k) {
    FERRY_TRY(auto bytes, wait_for(server_file(dir, k)));
    FERRY_TRY(auto info, parse_peer_file(bytes));
    FERRY_TRY(auto ep, w->connect(info.address));
    s.servers.push_back(ep);
    if (ifunc) FERRY_TRY_STATUS(xchase.add_peer(k, ep, info));
  }
  {
    FERRY_TRY(auto bytes, wait_for(client_file(dir)));
    FERRY_TRY(auto info, parse_peer_file(bytes));
    FERRY_TRY(s.client, w->connect(info.address));
    if (ifunc) FERRY_TRY_STATUS(xchase.add_peer(shards, s.client, info));
  }
  // Connected to every peer and about to serve: the client measures nothing
  // before every server has said so (a server still waiting for the
  // client's file sleeps 2 ms at a time, and a first chase sent meanwhile
  // measured that).
  const std::uint64_t me = index;
  FERRY_TRY_STATUS(send_am(s.client, kReadyAm, &me, sizeof me));
  std::uint64_t* const ifunc_buffer = s.slots.data() + n_slots;

  auto last = std::chrono::steady_clock::now();
  unsigned spins = 0;
  const bool yield = oversubscribed(shards);
  while (!s.stop) {
    if (s.parked && s.outbox.empty() && s.answers.empty()) {
      // Another mode is being measured: sleep until a message comes (the
      // client's unpark; the parent's death kills this process).
      if (w->progress() == 0) FERRY_TRY_STATUS(w->wait(1000));
      last = std::chrono::steady_clock::now();
      continue;
    }
    bool busy = w->progress() != 0;
    if (ifunc) {
      FERRY_TRY(const bool ran, xchase.poll(ifunc_buffer));
      busy = busy || ran;
    }
    if (busy) last = std::chrono::steady_clock::now();
    else if (yield) std::this_thread::yield();
    while (!s.outbox.empty()) {
      FERRY_TRY_STATUS(send_am(s.outbox.front().first, kChaseAm, &s.outbox.front().second, sizeof(chase_msg)));
      s.outbox.pop_front();
    }
    while (!s.answers.empty()) {
      FERRY_TRY_STATUS(send_am(s.client, kAnswerAm, &s.answers.front(), sizeof(chase_msg)));
      s.answers.pop_front();
    }
    if (++spins % 4096 == 0 && std::chrono::steady_clock::now() - last > std::chrono::milliseconds(idle_timeout_ms))
      return make_error(errc::timeout, "no message from the chase client for " + std::to_string(idle_timeout_ms) + " ms");
  }
  for (int i = 0; i < 10000; ++i) w->progress();  // let the last messages leave
  return {};
}

struct client::state {
  std::unique_ptr<raw_worker> w;
  std::uint32_t shards = 1;
  std::vector<ucp_ep_h> servers;
  std::vector<ucp_rkey_h> rkeys;
  std::vector<std::uint64_t> slots_address;
  std::vector<std::uint64_t> ifunc_buffer;  // the xchase answers land here
  published_memory memory;
  std::unique_ptr<ifunc_side> xchase;  // the ifunc mode
  std::uint32_t tag = 0;
  bool yield = false;
  bool answered = false;
  chase_msg answer{};
  std::uint32_t ready = 0;  // servers connected to every peer (kReadyAm)

  static ucs_status_t on_ready(void* arg, const void*, std::size_t, void*, std::size_t, const ucp_am_recv_param_t*) {
    ++static_cast<state*>(arg)->ready;
    return UCS_OK;
  }

  static ucs_status_t on_answer(void* arg, const void*, std::size_t, void* data, std::size_t length,
                                const ucp_am_recv_param_t*) {
    auto* s = static_cast<state*>(arg);
    if (length == sizeof(chase_msg)) {
      std::memcpy(&s->answer, data, sizeof(chase_msg));
      s->answered = s->answer.tag == s->tag;
    }
    return UCS_OK;
  }

  /// Send `value` to every server's handler `id`, and flush: it has left
  /// when this returns.
  result<void> tell_servers(unsigned id, std::uint64_t value) {
    for (ucp_ep_h ep : servers) FERRY_TRY_STATUS(send_am(ep, id, &value, sizeof value));
    ucp_request_param_t rp{};
    const ucs_status_ptr_t r = ucp_worker_flush_nbx(w->worker(), &rp);
    if (UCS_PTR_IS_ERR(r)) return ucx_error("flush", UCS_PTR_STATUS(r));
    if (r != nullptr) {
      FERRY_TRY_STATUS(wait([&] { return ucp_request_check_status(r) != UCS_INPROGRESS; }));
      ucp_request_free(r);
    }
    return {};
  }

  result<void> wait(const std::function<bool()>& done) {
    const auto limit = std::chrono::steady_clock::now() + kWaitLimit;
    unsigned spins = 0;
    while (!done()) {
      if (w->progress() == 0 && yield) std::this_thread::yield();
      if (++spins % 4096 == 0 && std::chrono::steady_clock::now() > limit)
        return make_error(errc::timeout, "a raw chase server stopped answering");
    }
    return {};
  }
};

result<std::unique_ptr<client>> client::connect(const fs::path& dir, const std::string& tls, std::uint32_t shards,
                                                bool ifunc) {
  std::unique_ptr<client> c(new client());
  c->s_ = std::make_unique<state>();
  auto& s = *c->s_;
  s.shards = shards;
  s.yield = oversubscribed(shards);
  FERRY_TRY(s.w, raw_worker::create(tls, UCP_FEATURE_AM | UCP_FEATURE_RMA));
  FERRY_TRY_STATUS(s.w->on_am(kAnswerAm, &state::on_answer, &s));
  FERRY_TRY_STATUS(s.w->on_am(kReadyAm, &state::on_ready, &s));
  if (ifunc) {
    s.ifunc_buffer.resize(kIfuncBufferWords);
    s.xchase = std::make_unique<ifunc_side>();
    FERRY_TRY_STATUS(s.xchase->init(*s.w, shards, shards, nullptr));
  }
  FERRY_TRY_STATUS(s.memory.publish(*s.w, s.ifunc_buffer, 0, client_file(dir)));
  for (std::uint32_t k = 0; k < shards; ++k) {
    FERRY_TRY(auto bytes, wait_for(server_file(dir, k)));
    FERRY_TRY(auto info, parse_peer_file(bytes));
    FERRY_TRY(auto ep, s.w->connect(info.address));
    if (ifunc) FERRY_TRY_STATUS(s.xchase->add_peer(k, ep, info));
    ucp_rkey_h rkey = nullptr;
    if (auto st = ucp_ep_rkey_unpack(ep, info.rkey.data(), &rkey); st != UCS_OK) return ucx_error("rkey unpack", st);
    s.servers.push_back(ep);
    s.rkeys.push_back(rkey);
    s.slots_address.push_back(info.slots_address);
  }
  FERRY_TRY_STATUS(s.wait([&] { return s.ready == shards; }));
  return c;
}

client::~client() {
  if (!s_) return;
  for (ucp_rkey_h k : s_->rkeys) ucp_rkey_destroy(k);
  s_->xchase.reset();
}

result<std::uint64_t> client::chase_ifunc(std::uint64_t start, std::uint32_t depth) {
  auto& s = *s_;
  if (!s.xchase) return make_error(errc::invalid_argument, "the client was connected without the ifunc mode");
  auto& t = s.xchase->t;
  const std::uint32_t owner = static_cast<std::uint32_t>(start % s.shards);
  xchase_args_t* a = nullptr;
  if (auto st = ucp_ifunc_msg_get_payload_ptr(&t.msg, reinterpret_cast<void**>(&a), nullptr); st != UCS_OK)
    return ifunc_error("xchase payload", st);
  *a = xchase_args_t{start, depth, ++s.tag};
  t.answered = 0;
  if (auto st = ucp_ifunc_send_nbix(t.ep[owner], t.msg, t.buffer[owner], t.rkey[owner]);
      st != UCS_OK && st != UCS_INPROGRESS)
    return ifunc_error("xchase send", st);
  if (auto st = flush_ep(t.worker, t.ep[owner]); st != UCS_OK) return ucx_error("flush", st);
  std::string failed;
  FERRY_TRY_STATUS(s.wait([&] {
    auto ran = s.xchase->poll(s.ifunc_buffer.data());
    if (!ran) failed = ran.error().describe();
    return !ran || (t.answered && t.answer.tag == s.tag);
  }));
  if (!failed.empty()) return make_error(errc::invalid_argument, failed);
  return t.answer.index;
}

result<std::uint64_t> client::chase_am(std::uint64_t start, std::uint32_t depth) {
  auto& s = *s_;
  const chase_msg m{start, depth, ++s.tag};
  s.answered = false;
  FERRY_TRY_STATUS(send_am(s.servers[start % s.shards], kChaseAm, &m, sizeof m));
  FERRY_TRY_STATUS(s.wait([&] { return s.answered; }));
  return s.answer.index;
}

result<std::uint64_t> client::chase_get(std::uint64_t start, std::uint32_t depth) {
  auto& s = *s_;
  std::uint64_t index = start;
  for (; depth > 0; --depth) {
    const auto owner = static_cast<std::uint32_t>(index % s.shards);
    std::uint64_t next = 0;
    ucp_request_param_t rp{};
    const ucs_status_ptr_t r = ucp_get_nbx(s.servers[owner], &next, sizeof next,
                                           s.slots_address[owner] + index / s.shards * 8, s.rkeys[owner], &rp);
    if (UCS_PTR_IS_ERR(r)) return ucx_error("get", UCS_PTR_STATUS(r));
    if (r != nullptr) {
      FERRY_TRY_STATUS(s.wait([&] { return ucp_request_check_status(r) != UCS_INPROGRESS; }));
      const ucs_status_t st = ucp_request_check_status(r);
      ucp_request_free(r);
      if (st != UCS_OK) return ucx_error("get", st);
    }
    index = next;
  }
  return index;
}

result<void> client::stop() { return s_->tell_servers(kStopAm, 0); }

result<void> client::park(bool parked) { return s_->tell_servers(kParkAm, parked ? 1 : 0); }

bool oversubscribed(std::uint32_t shards) { return shards + 1 > std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace chase_raw
