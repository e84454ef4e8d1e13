// ferry/status.hpp — the runtime's one error currency.
//
// Every fallible runtime operation returns `ferry::result<T>` (or
// `ferry::status` when there is no value). A result holds either a value or a
// `ferry::status` with an error kind (`ferry::errc`) and a human-readable
// message that says what was wrong and, where possible, what to do.
//
// Exceptions appear at exactly one edge: `result<T>::value()` (and
// `future<R>::get()`, which uses it) throws `ferry::error` when the result
// holds an error. Code that prefers not to use exceptions checks `ok()` /
// `has_value()` and reads `error()` instead. Inside ferry no exception is
// thrown for an expected failure (bad input, missing object, dead peer...).
//
// Other layers have their own currency and translate at their edge:
// `llvm::Expected` inside jit/, Clang diagnostics inside compiler-plugin/.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <ferry/export.h>

namespace ferry {

/// What went wrong. Stable numeric values: they travel in error frames.
enum class errc : std::uint16_t {
  ok = 0,
  invalid_argument = 1,   ///< caller passed something malformed (bad size, bad hex id...)
  not_found = 2,          ///< unknown object id / code id / node
  already_exists = 3,     ///< create with an id that is taken
  out_of_bounds = 4,      ///< offset/length outside the object
  bad_fot_index = 5,      ///< a ferry::ptr names a FOT slot the object does not have
  corrupt = 6,            ///< checksum or integrity hash mismatch
  bad_version = 7,        ///< format version this build does not understand
  bad_format = 8,         ///< wrong magic, truncated, inconsistent sizes
  io_error = 9,           ///< the operating system refused (errno in the message)
  not_local = 10,         ///< object exists but lives on another node
  timeout = 11,           ///< a deadline passed
  peer_dead = 12,         ///< the node that should answer is gone
  unknown_code = 13,      ///< code object not known to anyone reachable
  policy_violation = 14,  ///< code uses a disallowed symbol or construct
  no_matching_variant = 15,  ///< no bitcode variant for this node's triple/CPU
  compile_error = 16,     ///< LLVM could not compile the code object
  unsupported = 17,       ///< valid request this build/node cannot serve
  internal = 18,          ///< a bug in ferry: please report it
  cancelled = 19,         ///< the operation was abandoned (shutdown)
  out_of_memory = 20,     ///< allocation failed, or a node's object memory limit would be exceeded
  too_large = 21,         ///< a size or count beyond what ferry accepts (overflows, per-request limits)
  unsigned_code = 22,     ///< a node that requires signed code got a code object without a signature
  untrusted_signer = 23,  ///< the code object is signed, but by a key the node does not trust
  bad_signature = 24,     ///< the signature does not match the code object (tampered code or signature)
  memory_fault = 25,      ///< mobile code touched memory it may not (SIGSEGV, SIGBUS): the call ended
  arithmetic_fault = 26,  ///< mobile code divided by zero or overflowed a division (SIGFPE): the call ended
  trapped = 27,           ///< mobile code executed a trap or an illegal instruction (SIGILL, SIGTRAP): the call ended
  stack_overflow = 28,    ///< mobile code ran past its call stack (deep recursion, huge local arrays)
  fuel_exhausted = 29,    ///< mobile code used up its per-call fuel (loop iterations and calls)
};
/// The largest errc value this build knows (error frames carrying more are malformed).
inline constexpr errc errc_last = errc::fuel_exhausted;

/// Short, stable name of an error kind ("not_found", "corrupt", ...).
FERRY_API std::string_view to_string(errc e) noexcept;

/// An error kind plus a message; `ok()` when the kind is errc::ok.
class FERRY_API status {
 public:
  status() noexcept = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  [[nodiscard]] bool ok() const noexcept { return code_ == errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// "corrupt: object 3f..: checksum mismatch" — for logs and exceptions.
  [[nodiscard]] std::string describe() const;

 private:
  errc code_ = errc::ok;
  std::string message_;
};

/// Build an error status; the message should say what and, if known, why.
inline status make_error(errc code, std::string message) { return status(code, std::move(message)); }

/// The exception thrown at the public edge (result::value(), future::get()).
class FERRY_API error : public std::runtime_error {
 public:
  explicit error(ferry::status s) : std::runtime_error(s.describe()), status_(std::move(s)) {}
  [[nodiscard]] errc code() const noexcept { return status_.code(); }
  [[nodiscard]] const ferry::status& status() const noexcept { return status_; }

 private:
  ferry::status status_;
};

/// Either a T or an error status. Never both, never neither.
template <class T>
class [[nodiscard]] result {
 public:
  using value_type = T;
  // Implicit from a value and from an error status, so `return v;` and
  // `return make_error(...)` both read naturally.
  template <class U = T,
            class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                     !std::is_same_v<std::remove_cvref_t<U>, status> &&
                                     !std::is_same_v<std::remove_cvref_t<U>, result>>>
  result(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}
  result(status s) : v_(std::in_place_index<1>, std::move(s)) {
    if (std::get<1>(v_).ok()) v_.template emplace<1>(errc::internal, "result built from an ok status");
  }

  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  [[nodiscard]] bool ok() const noexcept { return has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws ferry::error if this holds an error.
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; an ok status if this holds a value.
  [[nodiscard]] status error() const { return has_value() ? status{} : std::get<1>(v_); }
  [[nodiscard]] errc code() const noexcept { return has_value() ? errc::ok : std::get<1>(v_).code(); }

 private:
  void check() const {
    if (!has_value()) throw ferry::error(std::get<1>(v_));
  }
  std::variant<T, status> v_;
};

/// result<void>: success or an error status.
template <>
class [[nodiscard]] result<void> {
 public:
  using value_type = void;
  result() noexcept = default;
  result(status s) : s_(std::move(s)) {}
  [[nodiscard]] bool has_value() const noexcept { return s_.ok(); }
  [[nodiscard]] bool ok() const noexcept { return s_.ok(); }
  explicit operator bool() const noexcept { return s_.ok(); }
  void value() const {
    if (!s_.ok()) throw ferry::error(s_);
  }
  [[nodiscard]] status error() const { return s_; }
  [[nodiscard]] errc code() const noexcept { return s_.code(); }

 private:
  status s_;
};

}  // namespace ferry

/// Propagate an error: `FERRY_TRY(auto x, f());` or `FERRY_TRY_STATUS(g());`.
#define FERRY_CONCAT_INNER(a, b) a##b
#define FERRY_CONCAT(a, b) FERRY_CONCAT_INNER(a, b)
#define FERRY_TRY(decl, expr)                                              \
  auto FERRY_CONCAT(ferry_try_, __LINE__) = (expr);                        \
  if (!FERRY_CONCAT(ferry_try_, __LINE__).has_value())                     \
    return FERRY_CONCAT(ferry_try_, __LINE__).error();                     \
  decl = std::move(*FERRY_CONCAT(ferry_try_, __LINE__))
#define FERRY_TRY_STATUS(expr)                                             \
  do {                                                                     \
    auto ferry_try_status_ = (expr);                                       \
    if (!ferry_try_status_.ok()) return ferry_try_status_.error();         \
  } while (0)
