// Key files and in-place signing of code sections (<ferry/code_signing.hpp>).
// What a signature covers and where it sits: wire/code_object.cpp.
#include <ferry/code_signing.hpp>
#include <ferry/code_registry.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <sodium.h>

#include <fmt/format.h>

#include "core/posix_io.hpp"

namespace ferry {
namespace {

constexpr std::string_view kPublicTag = "ferry-ed25519-public ";
constexpr std::string_view kSecretTag = "ferry-ed25519-secret ";

std::string hex(std::span<const std::uint8_t> b) {
  std::string s;
  for (auto x : b) s += fmt::format("{:02x}", x);
  return s;
}

template <std::size_t N>
result<std::array<std::uint8_t, N>> read_key_file(const std::filesystem::path& file, std::string_view tag) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(errc::io_error, fmt::format("cannot read key file {}: {}", file.string(), std::strerror(errno)));
  std::string text(std::istreambuf_iterator<char>(in), {});
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  std::array<std::uint8_t, N> key{};
  std::size_t got = 0;
  if (text.size() != tag.size() + 2 * N || text.compare(0, tag.size(), tag) != 0 ||
      sodium_hex2bin(key.data(), N, text.data() + tag.size(), 2 * N, nullptr, &got, nullptr) != 0 || got != N)
    return make_error(errc::bad_format, fmt::format("{} is not a ferry key file (expected \"{}\" and {} hex digits)",
                                                    file.string(), tag, 2 * N));
  return key;
}

status write_text(const std::filesystem::path& file, const std::string& text, mode_t mode) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return make_error(errno == EEXIST ? errc::already_exists : errc::io_error,
                      fmt::format("cannot create {}: {}", file.string(), std::strerror(errno)));
  auto s = core::write_all(fd, core::bytes_of(text.data(), text.size()));
  ::close(fd);
  return s;
}

}  // namespace

signing_key_pair generate_signing_key() {
  signing_key_pair k;
  crypto_sign_keypair(k.public_key.data(), k.secret_key.data());
  return k;
}

status write_signing_key(const std::filesystem::path& stem, const signing_key_pair& keys) {
  auto with = [&](const char* ext) { return std::filesystem::path(stem.string() + ext); };
  if (std::filesystem::exists(with(".key")) || std::filesystem::exists(with(".pub")))
    return make_error(errc::already_exists, fmt::format("{}.key or .pub exists: not overwriting a key", stem.string()));
  if (auto s = write_text(with(".key"), fmt::format("{}{}\n", kSecretTag, hex(keys.secret_key)), 0600); !s) return s;
  return write_text(with(".pub"), fmt::format("{}{}\n", kPublicTag, hex(keys.public_key)), 0644);
}

result<signing_secret_key> read_secret_key(const std::filesystem::path& file) {
  auto k = read_key_file<64>(file, kSecretTag);
  if (!k) return k.error();
  // The public half must be the seed's: a hand-edited file would sign with one key and name another.
  signing_public_key pk;
  signing_secret_key sk;
  crypto_sign_seed_keypair(pk.data(), sk.data(), k->data());
  if (sk != *k) return make_error(errc::bad_format, fmt::format("{}: the public half does not match the seed", file.string()));
  return *k;
}

result<signing_public_key> read_public_key(const std::filesystem::path& file) {
  return read_key_file<32>(file, kPublicTag);
}

result<std::vector<signing_public_key>> read_trusted_keys(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".pub") files.push_back(e.path());
  if (ec) return make_error(errc::io_error, fmt::format("cannot list trusted keys in {}: {}", dir.string(), ec.message()));
  std::sort(files.begin(), files.end());
  std::vector<signing_public_key> keys;
  for (const auto& f : files) {
    auto k = read_public_key(f);
    if (!k) return k.error();
    keys.push_back(*k);
  }
  if (keys.empty())
    return make_error(errc::invalid_argument,
                      fmt::format("{} holds no .pub key: a node that trusts no key can run no code", dir.string()));
  return keys;
}

std::string key_fingerprint(const signing_public_key& key) { return hex(std::span(key).first(8)); }

result<std::size_t> sign_code_section(std::span<std::uint8_t> section, const signing_secret_key& key) {
  const auto records = decode_code_section_records(section);
  for (const auto& r : records)
    if (!r.object) return r.object.error();
  for (const auto& r : records) {
    std::uint64_t len;
    std::memcpy(&len, section.data() + r.offset, sizeof len);
    if (auto s = code_object::sign_encoding(section.subspan(r.offset + 8, len), key); !s) return s;
  }
  return records.size();
}

}  // namespace ferry
