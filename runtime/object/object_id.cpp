#include <ferry/object_id.hpp>

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include <sodium.h>

#include <fmt/format.h>

namespace ferry {

namespace {
// libsodium picks its fastest implementations here; every hash in ferry
// (ids, checksums, journals) goes through it, and all of it lives in libferry.
[[maybe_unused]] const int sodium_ready = sodium_init();
}  // namespace

object_id object_id::random() {
  object_id id;
  do {
    std::uint64_t words[2];
    std::size_t got = 0;
    while (got < sizeof words) {
      const ssize_t n = getrandom(reinterpret_cast<char*>(words) + got, sizeof words - got, 0);
      if (n > 0) got += static_cast<std::size_t>(n);
      // EINTR: retry. Other errors cannot happen for a 16-byte blocking read on
      // Linux >= 3.17 once the pool is initialised.
    }
    id = {words[0], words[1]};
  } while (id.is_nil());
  return id;
}

object_id object_id::of_content(const void* data, std::size_t size) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, static_cast<const unsigned char*>(data), size, nullptr, 0);
  object_id id;
  // Big-endian reading of the first 16 digest bytes, so the text form of the
  // id is the hex of the digest prefix.
  for (int i = 0; i < 8; ++i) id.hi = (id.hi << 8) | digest[i];
  for (int i = 8; i < 16; ++i) id.lo = (id.lo << 8) | digest[i];
  return id;
}

result<object_id> object_id::parse(std::string_view hex) {
  if (hex.size() != 32)
    return make_error(errc::invalid_argument,
                      fmt::format("object id '{}' must be exactly 32 hex digits (has {})", hex, hex.size()));
  object_id id;
  for (std::size_t i = 0; i < 32; ++i) {
    const char c = hex[i];
    unsigned v;
    if (c >= '0' && c <= '9') v = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v = static_cast<unsigned>(c - 'A' + 10);
    else return make_error(errc::invalid_argument, fmt::format("object id '{}' has a non-hex character at {}", hex, i));
    std::uint64_t& word = i < 16 ? id.hi : id.lo;
    word = (word << 4) | v;
  }
  return id;
}

std::string object_id::to_string() const { return fmt::format("{:016x}{:016x}", hi, lo); }

}  // namespace ferry
