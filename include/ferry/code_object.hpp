// ferry/code_object.hpp — code objects: mobile functions as data.
//
// The compiler plugin turns each `[[ferry::mobile]]` function into a code
// object: a manifest (what the function is and how to call it) plus one LLVM
// bitcode module per target triple ("variant"). Code objects are
// content-addressed: `id()` hashes the canonical manifest encoding, which
// includes each variant's BLAKE2b-256 bitcode hash, so the id covers every
// byte of code. A receiver verifies the one variant it uses against its hash
// before LLVM ever parses it.
//
// Byte encoding (version 1): docs/code-objects.md; implementation:
// wire/code_object.cpp. `decode()` checks every length against the buffer
// and every variant's bitcode against its hash.
//
// Signatures: a code object may carry one Ed25519 signature (libsodium) over
// its manifest, which holds every bitcode hash, so it covers every byte of
// code. The signature sits in a fixed-size slot after the bitcode, outside
// the manifest: signing does not change the id, and `ferry sign` can fill
// the slot in place in a built program. A node configured with trusted keys
// (<ferry/code_signing.hpp>, `ferry node --trust-keys DIR`) refuses code that
// is unsigned (errc::unsigned_code), signed by another key
// (errc::untrusted_signer) or whose signature does not match
// (errc::bad_signature), before LLVM parses a byte of it.
//
// The uniform entry: every code object's module defines `entry_symbol` with
// the C signature `ferry_entry_fn` (<ferry/ferry.h>):
//     int32_t entry(ferry_context* cx, const void* args, void* result);
// `args` points at the argument block: the parameters after the context, laid
// out like the fields of a C struct in declaration order (each at the next
// offset aligned to its alignment), `args_size` bytes in all. The entry
// writes `result_size` bytes of return value to `result` (nothing for void)
// and returns 0, or a non-zero ferry::errc when the call failed inside the
// runtime API (e.g. cx.local on an object that is not here).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

namespace ferry {

/// One parameter of a mobile function, after the context.
struct code_param {
  enum class kind : std::uint8_t { value = 0, ref = 1 };
  kind what = kind::value;
  std::uint32_t size = 0;   ///< bytes in the argument block
  std::uint32_t align = 1;  ///< alignment in the argument block
  std::string type;         ///< readable type ("unsigned long", "ferry::ref<node>")
};

/// Ed25519 keys (libsodium layout): the secret key is seed + public key.
using signing_public_key = std::array<std::uint8_t, 32>;
using signing_secret_key = std::array<std::uint8_t, 64>;

/// The signature slot of a code object. All zero: not signed.
struct code_signature {
  signing_public_key signer{};              ///< the key that signed
  std::array<std::uint8_t, 64> signature{};  ///< Ed25519 over the signed message (docs/code-objects.md)
  [[nodiscard]] bool present() const noexcept;
};

/// The bitcode for one target.
struct code_variant {
  std::string triple;        ///< "x86_64-pc-linux-gnu", "aarch64-unknown-linux-gnu"
  std::string cpu;           ///< "x86-64", "generic", "cortex-a72"
  std::string features;      ///< LLVM feature string, "+sse2,+neon,..." (may be empty)
  std::string llvm_version;  ///< "19.1.7": the producer; receivers need the same major
  std::array<std::uint8_t, 32> bitcode_hash{};  ///< BLAKE2b-256 of `bitcode`
  std::vector<std::uint8_t> bitcode;
};

struct FERRY_API code_object {
  std::string name;          ///< readable: "graph::chase"
  std::string symbol;        ///< mangled: "_ZN5graph5chaseERN5ferry7contextE..."
  std::string entry_symbol;  ///< uniform entry defined by every variant's module
  std::vector<code_param> params;
  std::uint32_t args_size = 0;    ///< bytes of the argument block
  std::uint32_t result_size = 0;  ///< bytes of the result (0 = void)
  std::string result_type;        ///< readable ("unsigned long", "void")
  /// Hash of the readable signature (name-independent): a caller whose
  /// declaration differs from the code it reaches is refused.
  std::uint64_t signature_hash = 0;
  /// Mangled symbols of *other* mobile functions whose address this code
  /// takes (cx.forward(&g, ...)): resolved through the runtime, by symbol.
  std::vector<std::string> references;
  std::vector<code_variant> variants;
  /// Who vouches for this code; not part of the manifest, so not of the id.
  code_signature signature;

  /// Content address: BLAKE2b over the canonical manifest encoding.
  [[nodiscard]] object_id id() const;
  /// Canonical manifest bytes (everything but the bitcode itself).
  [[nodiscard]] std::vector<std::uint8_t> encode_manifest() const;
  /// Full encoding: manifest then each variant's bitcode.
  [[nodiscard]] std::vector<std::uint8_t> encode() const;
  /// Parse and verify (lengths, version, bitcode hashes). Untrusted input OK.
  static result<code_object> decode(std::span<const std::uint8_t> bytes);

  /// Which function an encoding says it is, read from the start of its
  /// manifest without verifying the rest: for naming the function of a code
  /// object that decode() rejects. Both empty if even these cannot be read
  /// (wrong magic or version, truncated before the symbol). Untrusted input OK.
  struct label {
    std::string name;
    std::string symbol;
  };
  static label peek_label(std::span<const std::uint8_t> bytes);

  /// Fill `bitcode_hash` of every variant from its bitcode.
  void seal();

  /// Sign the manifest (seal() first if the bitcode changed) with `key`.
  void sign(const signing_secret_key& key);
  /// Is this code signed, by one of `trusted`, with a signature that matches
  /// the manifest? errc::unsigned_code, errc::untrusted_signer or
  /// errc::bad_signature otherwise. Pure computation: no LLVM involved.
  [[nodiscard]] status verify_signature(std::span<const signing_public_key> trusted) const;
  /// Fill the signature slot of one full encoding in place (what `ferry sign`
  /// does to a program's `ferry_code` section). The encoding is decoded
  /// first (errors as decode()).
  static status sign_encoding(std::span<std::uint8_t> encoding, const signing_secret_key& key);
};

/// The readable-signature hash used for `signature_hash`.
FERRY_API std::uint64_t signature_hash_of(std::string_view result_type, std::span<const code_param> params);

}  // namespace ferry
