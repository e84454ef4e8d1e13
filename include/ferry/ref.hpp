// ferry/ref.hpp — typed references into the global object space.
//
// Two kinds of reference, for two jobs:
//
//  * `ferry::ref<T>` — a *global* reference: object id + byte offset into the
//    object's data. 24 bytes, trivially copyable, meaningful on every node.
//    This is what travels in invocations ("call f on the data at ref").
//    Same layout as the C `ferry_ref` in <ferry/ferry.h>.
//
//  * `ferry::ptr<T>` — a 64-bit *position-independent* pointer stored inside
//    object data: FOT index (16 bits) + offset (48 bits). Index 0 means "this
//    object"; index i >= 1 names slot i of the holding object's foreign object
//    table (FOT), which stores the target's object id. Because a ptr never
//    holds an address, an object copied byte-for-byte to another store or
//    node keeps every pointer valid: no serialization step.
//
// Resolving a ptr needs the object that holds it (for its FOT):
// `store::resolve(holder, p)` gives a ref<T>; `store::make_ptr(holder, ref)`
// builds one (adding a FOT slot if needed). Byte layout: docs/object-format.md.
#pragma once

#include <cstdint>
#include <type_traits>

#include <ferry/object_id.hpp>

namespace ferry {

template <class T>
struct ref {
  object_id id{};
  std::uint64_t offset = 0;  ///< byte offset into the object's data

  [[nodiscard]] constexpr bool is_nil() const noexcept { return id.is_nil(); }
  /// Reference to the element `n` positions further (offset + n*sizeof(T)).
  [[nodiscard]] constexpr ref operator+(std::uint64_t n) const noexcept
    requires(!std::is_void_v<T>)
  {
    return ref{id, offset + n * sizeof(T)};
  }
  /// Same place, other element type.
  template <class U>
  [[nodiscard]] constexpr ref<U> cast() const noexcept {
    return ref<U>{id, offset};
  }
  friend constexpr bool operator==(const ref&, const ref&) = default;
};

static_assert(std::is_trivially_copyable_v<ref<std::uint64_t>>);
static_assert(sizeof(ref<std::uint64_t>) == 24);

template <class T>
class ptr {
 public:
  static constexpr unsigned offset_bits = 48;
  static constexpr std::uint64_t offset_mask = (std::uint64_t{1} << offset_bits) - 1;
  static constexpr std::uint64_t max_offset = offset_mask;
  static constexpr std::uint64_t null_bits = ~std::uint64_t{0};

  /// The null pointer (all bits set; not "offset 0 of this object").
  constexpr ptr() noexcept = default;
  /// A pointer to `offset` in FOT slot `fot_index` (0 = the holding object).
  /// Offsets above max_offset are truncated by construction; store::make_ptr
  /// rejects them with errc::out_of_bounds.
  static constexpr ptr make(std::uint16_t fot_index, std::uint64_t offset) noexcept {
    ptr p;
    p.bits_ = (std::uint64_t{fot_index} << offset_bits) | (offset & offset_mask);
    return p;
  }
  static constexpr ptr from_bits(std::uint64_t bits) noexcept {
    ptr p;
    p.bits_ = bits;
    return p;
  }

  [[nodiscard]] constexpr bool is_null() const noexcept { return bits_ == null_bits; }
  [[nodiscard]] constexpr std::uint16_t fot_index() const noexcept {
    return static_cast<std::uint16_t>(bits_ >> offset_bits);
  }
  [[nodiscard]] constexpr std::uint64_t offset() const noexcept { return bits_ & offset_mask; }
  [[nodiscard]] constexpr std::uint64_t bits() const noexcept { return bits_; }
  template <class U>
  [[nodiscard]] constexpr ptr<U> cast() const noexcept {
    return ptr<U>::from_bits(bits_);
  }
  friend constexpr bool operator==(const ptr&, const ptr&) = default;

 private:
  std::uint64_t bits_ = null_bits;
};

static_assert(std::is_trivially_copyable_v<ptr<int>>);
static_assert(sizeof(ptr<int>) == 8);

}  // namespace ferry
