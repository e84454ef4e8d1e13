#include "raw_chase.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include "common/raw_ucx.hpp"

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
constexpr auto kWaitLimit = std::chrono::seconds(30);

/// Busy-polling processes that outnumber the cores starve each other (a
/// message waits for its receiver's next time slice, milliseconds): then an
/// idle baseline process yields its core, as a real AM runtime would.
bool oversubscribed(std::uint32_t shards) { return shards + 1 > std::max(1u, std::thread::hardware_concurrency()); }

/// What travels between the processes of the am baseline.
struct chase_msg {
  std::uint64_t index;
  std::uint32_t depth;
  std::uint32_t tag;
};

/// A server's published file: [u64 slots address][u64 rkey length][rkey][worker address].
fs::path server_file(const fs::path& dir, std::uint32_t s) { return dir / ("raw-server-" + std::to_string(s)); }
fs::path client_file(const fs::path& dir) { return dir / "raw-client"; }

void publish(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
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

struct server_info {
  std::uint64_t slots_address = 0;
  std::vector<std::uint8_t> rkey;
  std::vector<std::uint8_t> address;
};

result<server_info> parse_server_file(const std::vector<std::uint8_t>& bytes) {
  server_info info;
  std::uint64_t rkey_len = 0;
  if (bytes.size() < 16) return make_error(errc::bad_format, "short raw server file");
  std::memcpy(&info.slots_address, bytes.data(), 8);
  std::memcpy(&rkey_len, bytes.data() + 8, 8);
  if (rkey_len > bytes.size() - 16) return make_error(errc::bad_format, "raw server file: bad rkey length");
  info.rkey.assign(bytes.begin() + 16, bytes.begin() + 16 + static_cast<std::ptrdiff_t>(rkey_len));
  info.address.assign(bytes.begin() + 16 + static_cast<std::ptrdiff_t>(rkey_len), bytes.end());
  return info;
}

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
  std::vector<std::uint64_t> slots;
  std::vector<ucp_ep_h> servers;  // by shard
  ucp_ep_h client = nullptr;
  std::deque<std::pair<ucp_ep_h, chase_msg>> outbox;  // sent after progress() returns
  std::deque<chase_msg> answers;
  bool stop = false;

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
};

}  // namespace

result<void> serve(const fs::path& dir, const std::string& tls, std::uint32_t index, std::uint32_t shards,
                   std::vector<std::uint64_t> slots, int idle_timeout_ms) {
  server_state s;
  s.index = index;
  s.shards = shards;
  s.slots = std::move(slots);
  FERRY_TRY(auto w, raw_worker::create(tls, UCP_FEATURE_AM | UCP_FEATURE_RMA));
  FERRY_TRY_STATUS(w->on_am(kChaseAm, &server_state::on_chase, &s));
  FERRY_TRY_STATUS(w->on_am(kStopAm, &server_state::on_stop, &s));

  // Register the slots for the get baseline and publish how to reach them.
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  mp.address = s.slots.data();
  mp.length = std::max<std::size_t>(s.slots.size() * 8, 8);
  ucp_mem_h memh = nullptr;
  if (auto st = ucp_mem_map(w->context(), &mp, &memh); st != UCS_OK) return ucx_error("mem map", st);
  void* rkey = nullptr;
  std::size_t rkey_len = 0;
  if (auto st = ucp_rkey_pack(w->context(), memh, &rkey, &rkey_len); st != UCS_OK) return ucx_error("rkey pack", st);
  {
    FERRY_TRY(auto address, w->address());
    std::vector<std::uint8_t> file(16);
    const auto base = reinterpret_cast<std::uint64_t>(s.slots.data());
    const std::uint64_t len = rkey_len;
    std::memcpy(file.data(), &base, 8);
    std::memcpy(file.data() + 8, &len, 8);
    file.insert(file.end(), static_cast<std::uint8_t*>(rkey), static_cast<std::uint8_t*>(rkey) + rkey_len);
    file.insert(file.end(), address.begin(), address.end());
    publish(server_file(dir, index), file);
  }
  ucp_rkey_buffer_release(rkey);

  // Endpoints to every server (itself included: never used) and the client.
  for (std::uint32_t k = 0; k < shards; ++k) {
    FERRY_TRY(auto bytes, wait_for(server_file(dir, k)));
    FERRY_TRY(auto info, parse_server_file(bytes));
    FERRY_TRY(auto ep, w->connect(info.address));
    s.servers.push_back(ep);
  }
  {
    FERRY_TRY(auto bytes, wait_for(client_file(dir)));
    FERRY_TRY(s.client, w->connect(bytes));
  }

  auto last = std::chrono::steady_clock::now();
  unsigned spins = 0;
  const bool yield = oversubscribed(shards);
  while (!s.stop) {
    if (w->progress() != 0) last = std::chrono::steady_clock::now();
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
  ucp_mem_unmap(w->context(), memh);
  return {};
}

struct client::state {
  std::unique_ptr<raw_worker> w;
  std::uint32_t shards = 1;
  std::vector<ucp_ep_h> servers;
  std::vector<ucp_rkey_h> rkeys;
  std::vector<std::uint64_t> slots_address;
  std::uint32_t tag = 0;
  bool yield = false;
  bool answered = false;
  chase_msg answer{};

  static ucs_status_t on_answer(void* arg, const void*, std::size_t, void* data, std::size_t length,
                                const ucp_am_recv_param_t*) {
    auto* s = static_cast<state*>(arg);
    if (length == sizeof(chase_msg)) {
      std::memcpy(&s->answer, data, sizeof(chase_msg));
      s->answered = s->answer.tag == s->tag;
    }
    return UCS_OK;
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

result<std::unique_ptr<client>> client::connect(const fs::path& dir, const std::string& tls, std::uint32_t shards) {
  std::unique_ptr<client> c(new client());
  c->s_ = std::make_unique<state>();
  auto& s = *c->s_;
  s.shards = shards;
  s.yield = oversubscribed(shards);
  FERRY_TRY(s.w, raw_worker::create(tls, UCP_FEATURE_AM | UCP_FEATURE_RMA));
  FERRY_TRY_STATUS(s.w->on_am(kAnswerAm, &state::on_answer, &s));
  {
    FERRY_TRY(auto address, s.w->address());
    publish(client_file(dir), address);
  }
  for (std::uint32_t k = 0; k < shards; ++k) {
    FERRY_TRY(auto bytes, wait_for(server_file(dir, k)));
    FERRY_TRY(auto info, parse_server_file(bytes));
    FERRY_TRY(auto ep, s.w->connect(info.address));
    ucp_rkey_h rkey = nullptr;
    if (auto st = ucp_ep_rkey_unpack(ep, info.rkey.data(), &rkey); st != UCS_OK) return ucx_error("rkey unpack", st);
    s.servers.push_back(ep);
    s.rkeys.push_back(rkey);
    s.slots_address.push_back(info.slots_address);
  }
  return c;
}

client::~client() {
  if (!s_) return;
  for (ucp_rkey_h k : s_->rkeys) ucp_rkey_destroy(k);
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

result<void> client::stop() {
  auto& s = *s_;
  const std::uint64_t bye = 0;
  for (ucp_ep_h ep : s.servers) FERRY_TRY_STATUS(send_am(ep, kStopAm, &bye, sizeof bye));
  // Flush: the stops must leave before this worker goes.
  ucp_request_param_t rp{};
  const ucs_status_ptr_t r = ucp_worker_flush_nbx(s.w->worker(), &rp);
  if (UCS_PTR_IS_ERR(r)) return ucx_error("flush", UCS_PTR_STATUS(r));
  if (r != nullptr) {
    FERRY_TRY_STATUS(s.wait([&] { return ucp_request_check_status(r) != UCS_INPROGRESS; }));
    ucp_request_free(r);
  }
  return {};
}

}  // namespace chase_raw
