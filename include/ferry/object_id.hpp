// ferry/object_id.hpp — 128-bit identity of every object in the global space.
//
// Data objects get random ids (getrandom(2), 128 bits: collisions are not a
// practical concern); code objects get the content hash of their manifest and
// bitcode (see docs/code-objects.md), so the same code has the same id
// everywhere without coordination.
//
// Text form: 32 lowercase hex digits, most significant first
// ("0123456789abcdef0123456789abcdef"). Byte form (in object headers and on
// the wire): 16 bytes, `hi` then `lo`, each little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

#include <ferry/status.hpp>

namespace ferry {

struct FERRY_API object_id {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;

  /// A fresh random id (never nil). Reads the kernel's CSPRNG.
  static object_id random();
  /// Parse 32 hex digits (either case); anything else is errc::invalid_argument.
  static result<object_id> parse(std::string_view hex);
  /// Id of some bytes' content: the first 128 bits of BLAKE2b-256.
  static object_id of_content(const void* data, std::size_t size);

  /// The all-zero id: "no object".
  [[nodiscard]] constexpr bool is_nil() const noexcept { return hi == 0 && lo == 0; }
  [[nodiscard]] std::string to_string() const;
  /// First 8 hex digits, for logs.
  [[nodiscard]] std::string short_string() const { return to_string().substr(0, 8); }

  friend constexpr bool operator==(const object_id&, const object_id&) = default;
  friend constexpr auto operator<=>(const object_id&, const object_id&) = default;
};

static_assert(std::is_trivially_copyable_v<object_id>);
static_assert(sizeof(object_id) == 16);

}  // namespace ferry

template <>
struct std::hash<ferry::object_id> {
  std::size_t operator()(const ferry::object_id& id) const noexcept {
    // Ids are random or cryptographic hashes: mixing the halves suffices.
    return static_cast<std::size_t>(id.hi ^ (id.lo * 0x9e3779b97f4a7c15ULL));
  }
};
