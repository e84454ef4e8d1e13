// ferry/code_signing.hpp — who may ship code to a node: Ed25519 keys and
// signed code sections.
//
// A code object carries one signature slot (<ferry/code_object.hpp>); a node
// given trusted public keys (`node_config::jit.trusted_signers`, `ferry node
// --trust-keys DIR`) runs only code objects signed by one of them and refuses
// every other before LLVM parses a byte (errc::unsigned_code,
// errc::untrusted_signer, errc::bad_signature).
//
// Keys are text files (docs/security.md):
//   NAME.pub   "ferry-ed25519-public " + 64 hex digits + "\n"
//   NAME.key   "ferry-ed25519-secret " + 128 hex digits + "\n" (mode 0600;
//              libsodium's layout: the 32-byte seed, then the public key)
// A trust directory holds the `.pub` files of every key a node accepts.
//
// Signing a program: `ferry sign --keygen NAME` once, then `ferry sign --key
// NAME.key PROGRAM` after each build fills the signature slot of every code
// object in the program's `ferry_code` section in place (the slot exists in
// every encoding, so nothing moves and no relink is needed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/status.hpp>

namespace ferry {

struct signing_key_pair {
  signing_public_key public_key{};
  signing_secret_key secret_key{};
};

/// A fresh key pair from the system's random source.
FERRY_API signing_key_pair generate_signing_key();

/// Write `STEM.key` (created 0600; never overwritten: errc::already_exists)
/// and `STEM.pub`.
FERRY_API status write_signing_key(const std::filesystem::path& stem, const signing_key_pair& keys);
/// Read a `.key` file: errc::io_error, or errc::bad_format naming the file.
FERRY_API result<signing_secret_key> read_secret_key(const std::filesystem::path& file);
/// Read a `.pub` file: errc::io_error, or errc::bad_format naming the file.
FERRY_API result<signing_public_key> read_public_key(const std::filesystem::path& file);
/// Every `*.pub` key in `dir`. A directory without one is
/// errc::invalid_argument (a node that trusts nobody can run nothing);
/// an unreadable or malformed key file fails the whole read.
FERRY_API result<std::vector<signing_public_key>> read_trusted_keys(const std::filesystem::path& dir);

/// Short readable name of a key: its first 8 bytes in hex.
FERRY_API std::string key_fingerprint(const signing_public_key& key);

/// Sign every code object of a `ferry_code` section (or side file) in
/// place; returns how many. Any record that does not decode fails the
/// whole call before anything is written.
FERRY_API result<std::size_t> sign_code_section(std::span<std::uint8_t> section, const signing_secret_key& key);

}  // namespace ferry
