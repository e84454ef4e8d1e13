// Little-endian byte writer/reader shared by every wire format in ferry.
// The reader never reads past its buffer: each get_* reports failure through
// `ok()` (sticky), so a decoder checks once at the end of a record and turns
// a short or inconsistent buffer into errc::bad_format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ferry::wire {

class writer {
 public:
  writer() : buf_(&own_) {}
  /// Write into `out` (cleared first): an encoder that reuses one buffer
  /// allocates nothing once it has grown.
  explicit writer(std::vector<std::uint8_t>& out) : buf_(&out) { out.clear(); }
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  template <class U>
    requires std::is_integral_v<U>
  void put(U v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    buf_->insert(buf_->end(), p, p + sizeof v);  // hosts are little-endian (static_assert in object_layout.cpp)
  }
  void put_bytes(std::span<const std::uint8_t> b) { buf_->insert(buf_->end(), b.begin(), b.end()); }
  /// u32 length, then the bytes.
  void put_string(std::string_view s) {
    put(static_cast<std::uint32_t>(s.size()));
    buf_->insert(buf_->end(), s.begin(), s.end());
  }
  [[nodiscard]] std::size_t size() const { return buf_->size(); }
  std::vector<std::uint8_t>& bytes() { return *buf_; }

 private:
  std::vector<std::uint8_t> own_;
  std::vector<std::uint8_t>* buf_;
};

/// What a record will take, counted by the same calls that write it: a
/// record written as `template <class W> void put_x(W&, ...)` is sized with
/// a sizer, then written with a span_writer into a buffer resized once.
class sizer {
 public:
  template <class U>
    requires std::is_integral_v<U>
  void put(U) {
    n_ += sizeof(U);
  }
  void put_bytes(std::span<const std::uint8_t> b) { n_ += b.size(); }
  void put_string(std::string_view s) { n_ += 4 + s.size(); }
  [[nodiscard]] std::size_t size() const { return n_; }

 private:
  std::size_t n_ = 0;
};

/// Writes into bytes sized beforehand by a sizer over the same calls (one
/// resize and plain copies: an invoke frame encodes in a fifth of the time
/// vector::insert took field by field). Writing past the end is a bug of
/// the caller's sizing, not of the input, so it is not checked here.
class span_writer {
 public:
  explicit span_writer(std::span<std::uint8_t> out) : p_(out.data()) {}
  template <class U>
    requires std::is_integral_v<U>
  void put(U v) {
    copy(&v, sizeof v);  // hosts are little-endian (static_assert in object_layout.cpp)
  }
  void put_bytes(std::span<const std::uint8_t> b) { copy(b.data(), b.size()); }
  void put_string(std::string_view s) {
    put(static_cast<std::uint32_t>(s.size()));
    copy(s.data(), s.size());
  }

 private:
  void copy(const void* from, std::size_t n) {
    if (n != 0) std::memcpy(p_, from, n);
    p_ += n;
  }
  std::uint8_t* p_;
};

class reader {
 public:
  explicit reader(std::span<const std::uint8_t> b) : buf_(b) {}

  template <class U>
    requires std::is_integral_v<U>
  U get() {
    U v{};
    if (!take(sizeof v)) return v;
    std::memcpy(&v, buf_.data() + pos_ - sizeof v, sizeof v);
    return v;
  }
  /// A u32-length-prefixed string of at most `max` bytes.
  std::string get_string(std::size_t max = 1 << 16) {
    const auto n = get<std::uint32_t>();
    if (n > max || !take(n)) {
      ok_ = false;
      return {};
    }
    return {reinterpret_cast<const char*>(buf_.data() + pos_ - n), n};
  }
  /// `n` raw bytes (a view into the buffer); empty and !ok() if short.
  std::span<const std::uint8_t> get_bytes(std::size_t n) {
    if (!take(n)) return {};
    return buf_.subspan(pos_ - n, n);
  }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t remaining() const { return ok_ ? buf_.size() - pos_ : 0; }
  [[nodiscard]] std::size_t position() const { return pos_; }
  /// Mark the record malformed (a decoder's own consistency check failed).
  void fail() { ok_ = false; }

 private:
  bool take(std::size_t n) {
    if (!ok_ || buf_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  std::span<const std::uint8_t> buf_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// blob: u64 length, then the bytes.
template <class W>
void put_blob(W& w, std::span<const std::uint8_t> b) {
  w.put(static_cast<std::uint64_t>(b.size()));
  w.put_bytes(b);
}
inline std::vector<std::uint8_t> get_blob(reader& r) {
  const auto n = r.get<std::uint64_t>();
  if (n > r.remaining()) {
    r.fail();  // checked before allocating: n is untrusted
    return {};
  }
  const auto b = r.get_bytes(n);
  return {b.begin(), b.end()};
}

}  // namespace ferry::wire
