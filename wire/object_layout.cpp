#include "object_layout.hpp"

#include <bit>
#include <cstring>

#include <sodium.h>

#include <fmt/format.h>

namespace ferry::layout {
namespace {

static_assert(std::endian::native == std::endian::little,
              "ferry stores integers little-endian and currently assumes a little-endian host");

template <class U>
U load(const std::byte* p) noexcept {
  U v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class U>
void put(std::byte* p, U v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

object_id load_id(const std::byte* p) noexcept { return {load<std::uint64_t>(p), load<std::uint64_t>(p + 8)}; }
void put_id(std::byte* p, object_id id) noexcept {
  put(p, id.hi);
  put(p + 8, id.lo);
}

}  // namespace

std::uint64_t load_u64(const std::byte* p) noexcept { return load<std::uint64_t>(p); }
void store_u64(std::byte* p, std::uint64_t v) noexcept { put(p, v); }

std::uint64_t data_offset_for(std::uint32_t fot_capacity) noexcept {
  const std::uint64_t end = kHeaderSize + std::uint64_t{fot_capacity} * kFotEntrySize;
  return (end + kDataAlign - 1) / kDataAlign * kDataAlign;
}

std::uint64_t image_size_for(std::uint32_t fot_capacity, std::uint64_t data_size) noexcept {
  return data_offset_for(fot_capacity) + data_size;
}

void init(std::span<std::byte> image, object_id id, std::uint32_t fot_capacity, std::uint64_t data_size) {
  const std::uint64_t data_off = data_offset_for(fot_capacity);
  std::memset(image.data(), 0, data_off);
  std::byte* h = image.data();
  put(h + kOffMagic, kMagic);
  put(h + kOffVersion, kFormatVersion);
  put(h + kOffHeaderSize, static_cast<std::uint16_t>(kHeaderSize));
  put_id(h + kOffId, id);
  put(h + kOffFotCount, std::uint32_t{0});
  put(h + kOffFotCapacity, fot_capacity);
  put(h + kOffDataSize, data_size);
  put(h + kOffDataOffset, data_off);
}

result<header> read_header(std::span<const std::byte> image) {
  if (image.size() < kHeaderSize)
    return make_error(errc::bad_format, fmt::format("object image truncated: {} bytes, header alone is {}",
                                                    image.size(), kHeaderSize));
  const std::byte* h = image.data();
  if (load<std::uint32_t>(h + kOffMagic) != kMagic)
    return make_error(errc::bad_format, "not a ferry object image (bad magic)");
  const auto version = load<std::uint16_t>(h + kOffVersion);
  if (version != kFormatVersion)
    return make_error(errc::bad_version, fmt::format("object format version {} is not supported (this build reads {})",
                                                     version, kFormatVersion));
  if (load<std::uint16_t>(h + kOffHeaderSize) != kHeaderSize)
    return make_error(errc::bad_format, "object header size field is not 64");
  header out;
  out.id = load_id(h + kOffId);
  out.fot_count = load<std::uint32_t>(h + kOffFotCount);
  out.fot_capacity = load<std::uint32_t>(h + kOffFotCapacity);
  out.data_size = load<std::uint64_t>(h + kOffDataSize);
  out.data_offset = load<std::uint64_t>(h + kOffDataOffset);
  out.checksum = load<std::uint64_t>(h + kOffChecksum);
  out.moves = load<std::uint64_t>(h + kOffMoves);
  const auto id_text = out.id.short_string();
  if (out.id.is_nil()) return make_error(errc::bad_format, "object header carries the nil id");
  if (out.fot_capacity > 65535 || out.fot_count > out.fot_capacity)
    return make_error(errc::bad_format, fmt::format("object {}: FOT count {} / capacity {} invalid", id_text,
                                                    out.fot_count, out.fot_capacity));
  if (out.data_offset != data_offset_for(out.fot_capacity))
    return make_error(errc::bad_format, fmt::format("object {}: data offset {} inconsistent with FOT capacity {}",
                                                    id_text, out.data_offset, out.fot_capacity));
  if (out.data_size > (std::uint64_t{1} << 48) || image.size() != out.data_offset + out.data_size)
    return make_error(errc::bad_format,
                      fmt::format("object {}: image is {} bytes but header says {} (truncated or padded)", id_text,
                                  image.size(), out.data_offset + out.data_size));
  return out;
}

result<header> validate(std::span<const std::byte> image) {
  FERRY_TRY(header h, read_header(image));
  const std::uint64_t actual = compute_checksum(image);
  if (actual != h.checksum)
    return make_error(errc::corrupt, fmt::format("object {}: checksum mismatch (stored {:016x}, computed {:016x})",
                                                 h.id.to_string(), h.checksum, actual));
  return h;
}

std::uint64_t compute_checksum(std::span<const std::byte> image) noexcept {
  // BLAKE2b over the image with the checksum field replaced by zeros; the
  // first 8 bytes of the digest are the checksum.
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  const auto* p = reinterpret_cast<const unsigned char*>(image.data());
  static constexpr unsigned char zeros[8] = {};
  crypto_generichash_update(&st, p, kOffChecksum);
  crypto_generichash_update(&st, zeros, sizeof zeros);
  crypto_generichash_update(&st, p + kOffChecksum + 8, image.size() - kOffChecksum - 8);
  unsigned char digest[16];
  crypto_generichash_final(&st, digest, sizeof digest);
  return load<std::uint64_t>(reinterpret_cast<const std::byte*>(digest));
}

void seal(std::span<std::byte> image) noexcept { put(image.data() + kOffChecksum, compute_checksum(image)); }

void seal_zero_tail(std::span<std::byte> prefix, std::uint64_t image_size) noexcept {
  // The same BLAKE2b stream as compute_checksum(), the zero tail fed from a
  // small static buffer.
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  const auto* p = reinterpret_cast<const unsigned char*>(prefix.data());
  static constexpr unsigned char zeros[64 * 1024] = {};
  crypto_generichash_update(&st, p, kOffChecksum);
  crypto_generichash_update(&st, zeros, 8);
  crypto_generichash_update(&st, p + kOffChecksum + 8, prefix.size() - kOffChecksum - 8);
  for (std::uint64_t left = image_size - prefix.size(); left > 0;) {
    const std::uint64_t n = left < sizeof zeros ? left : sizeof zeros;
    crypto_generichash_update(&st, zeros, n);
    left -= n;
  }
  unsigned char digest[16];
  crypto_generichash_final(&st, digest, sizeof digest);
  put(prefix.data() + kOffChecksum, load<std::uint64_t>(reinterpret_cast<const std::byte*>(digest)));
}

void set_fot_count(std::span<std::byte> image, std::uint32_t n) noexcept { put(image.data() + kOffFotCount, n); }
void set_moves(std::span<std::byte> image, std::uint64_t n) noexcept { put(image.data() + kOffMoves, n); }

object_id fot_entry(std::span<const std::byte> image, std::uint32_t slot) noexcept {
  return load_id(image.data() + kHeaderSize + (slot - 1) * kFotEntrySize);
}

void set_fot_entry(std::span<std::byte> image, std::uint32_t slot, object_id id) noexcept {
  put_id(image.data() + kHeaderSize + (slot - 1) * kFotEntrySize, id);
}

}  // namespace ferry::layout
