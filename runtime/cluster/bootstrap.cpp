#include "bootstrap.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <thread>

#include <fmt/format.h>

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

}  // namespace ferry::cluster
