#include "rendezvous.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "bootstrap.hpp"

namespace ferry::cluster {
namespace {

namespace fs = std::filesystem;

result<void> write_atomically(const fs::path& file, std::span<const std::uint8_t> bytes) {
  fs::path tmp = file;
  tmp += fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) return make_error(errc::io_error, fmt::format("cannot write {}", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return make_error(errc::io_error, fmt::format("cannot rename {}: {}", tmp.string(), ec.message()));
  return {};
}

std::vector<std::uint8_t> read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

result<void> rendezvous::init(std::uint32_t nodes) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return make_error(errc::io_error, fmt::format("cannot create {}: {}", dir_.string(), ec.message()));
  const auto text = std::to_string(nodes);
  return write_atomically(dir_ / "size", {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

result<std::uint32_t> rendezvous::size(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto bytes = read_all(dir_ / "size");
    if (!bytes.empty()) {
      const std::string text(bytes.begin(), bytes.end());
      char* end = nullptr;
      const unsigned long n = std::strtoul(text.c_str(), &end, 10);
      if (end == text.c_str() || n == 0 || n > 4096)
        return make_error(errc::bad_format, fmt::format("{}/size holds '{}'", dir_.string(), text));
      return static_cast<std::uint32_t>(n);
    }
    if (std::chrono::steady_clock::now() > deadline)
      return make_error(errc::timeout, fmt::format("no cluster at {} (is `ferry launch` running?)", dir_.string()));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

result<void> rendezvous::publish_node(wire::node_index index, std::span<const std::uint8_t> address) const {
  return write_atomically(dir_ / fmt::format("node.{}", index), address);
}

result<wire::node_index> rendezvous::claim_member(std::uint32_t nodes) const {
  for (wire::node_index k = nodes; k < nodes + 65536; ++k) {
    const auto file = dir_ / fmt::format("member.{}", k);
    const int fd = ::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      return k;
    }
    if (errno != EEXIST) return make_error(errc::io_error, fmt::format("cannot create {}", file.string()));
  }
  return make_error(errc::unsupported, "more than 65536 client processes in one cluster");
}

result<void> rendezvous::publish_member(wire::node_index index, std::span<const std::uint8_t> address) const {
  return write_atomically(dir_ / fmt::format("member.{}", index), address);
}

void rendezvous::release_member(wire::node_index index) const {
  std::error_code ec;
  fs::remove(dir_ / fmt::format("member.{}", index), ec);
}

std::vector<std::pair<wire::node_index, std::vector<std::uint8_t>>> rendezvous::member_addresses() const {
  std::vector<std::pair<wire::node_index, std::vector<std::uint8_t>>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    constexpr std::string_view prefix = "member.";
    if (!name.starts_with(prefix)) continue;
    wire::node_index k = 0;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    if (auto [end, err] = std::from_chars(first, last, k); err != std::errc{} || end != last) continue;  // a .tmp file
    auto address = read_all(e.path());
    if (!address.empty()) out.emplace_back(k, std::move(address));
  }
  std::sort(out.begin(), out.end());
  return out;
}

result<std::vector<std::vector<std::uint8_t>>> rendezvous::node_addresses(std::uint32_t n,
                                                                          std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::vector<std::uint8_t>> out(n);
  for (;;) {
    std::vector<wire::node_index> missing;
    for (wire::node_index i = 0; i < n; ++i) {
      if (out[i].empty()) out[i] = read_all(dir_ / fmt::format("node.{}", i));
      if (out[i].empty()) missing.push_back(i);
    }
    if (missing.empty()) return out;
    if (std::chrono::steady_clock::now() > deadline)
      return make_error(errc::timeout, fmt::format("nodes {} did not publish their address in {} within {} ms",
                                                   fmt::join(missing, ","), dir_.string(), timeout.count()));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// ---------------------------------------------------------------------------
// The rendezvous directory as a bootstrap.

namespace {

class rendezvous_bootstrap final : public bootstrap {
 public:
  rendezvous_bootstrap(rendezvous rv, bootstrap_role role, std::uint32_t nodes, node_index self)
      : rv_(std::move(rv)), role_(role), nodes_(nodes), self_(self) {}
  ~rendezvous_bootstrap() override {
    if (role_ == bootstrap_role::client && !left_) rv_.release_member(self_);
  }

  std::string describe() const override { return fmt::format("rendezvous {}", rv_.dir().string()); }
  std::uint32_t nodes() const override { return nodes_; }
  node_index self() const override { return self_; }

  result<void> publish(std::span<const std::uint8_t> address) override {
    return role_ == bootstrap_role::node ? rv_.publish_node(self_, address) : rv_.publish_member(self_, address);
  }
  result<std::vector<std::vector<std::uint8_t>>> node_addresses(std::chrono::milliseconds timeout) override {
    return rv_.node_addresses(nodes_, timeout);
  }
  std::vector<std::pair<node_index, std::vector<std::uint8_t>>> clients() const override {
    return rv_.member_addresses();
  }
  result<void> leave() override {
    if (role_ == bootstrap_role::client && !left_) rv_.release_member(self_);
    left_ = true;
    return {};
  }

 private:
  rendezvous rv_;
  bootstrap_role role_;
  std::uint32_t nodes_;
  node_index self_;
  bool left_ = false;
};

}  // namespace

namespace detail {

result<std::unique_ptr<bootstrap>> open_rendezvous(bootstrap_role role, const bootstrap_options& options) {
  rendezvous rv(options.rendezvous);
  FERRY_TRY(const std::uint32_t n, rv.size(options.timeout));
  node_index self;
  if (role == bootstrap_role::node) {
    if (!options.index)
      return make_error(errc::invalid_argument, fmt::format("a node joining {} needs its index (--index)", rv.dir().string()));
    if (*options.index >= n)
      return make_error(errc::invalid_argument,
                        fmt::format("node index {} outside the cluster of {} nodes at {}", *options.index, n, rv.dir().string()));
    self = *options.index;
  } else {
    FERRY_TRY(self, rv.claim_member(n));
  }
  return std::unique_ptr<bootstrap>(new rendezvous_bootstrap(std::move(rv), role, n, self));
}

}  // namespace detail

}  // namespace ferry::cluster
