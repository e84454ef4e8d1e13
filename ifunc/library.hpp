// ifunc/library.hpp — an ifunc library as code: the files `ferry ifunc build`
// writes (NAME.<triple>.bc per target, NAME.deps) or the same bitcode from
// memory, turned into the code section messages carry and the registry key.
//
// An ifunc library is one C file defining NAME_payload_bound,
// NAME_payload_init and NAME_main (docs/ifunc.md). Its code object is named
// NAME, its entry is NAME_main and the other two are its references, so the
// JIT exports all three; one variant per bitcode file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

#include "wire/ifunc_frame.hpp"

namespace ferry::ifunc {

/// One target's bitcode, from memory.
struct bitcode_buffer {
  std::string triple;  ///< informative: the triple is read from the bitcode
  std::span<const std::uint8_t> bytes;
};

/// NAME's files in `dir`: every NAME.<triple>.bc, NAME.deps (one library
/// per line; a missing file means no dependencies) and NAME.sig (its
/// signature, if signed: signature_file). errc::not_found when no bitcode
/// file is there, errc::bad_format for a file that is not bitcode or a
/// NAME.sig that is not one. Any NAME length; NAME may not contain '/'
/// (errc::invalid_argument). A NAME.sig older than the bitcode is read as
/// it is: the signature check (a node's --trust-keys) then refuses it.
result<wire::ifunc_code> read_library(const std::filesystem::path& dir, std::string_view name, bool pure);
/// The same from memory (ucp_register_ifunc_im).
result<wire::ifunc_code> library_from_memory(std::string_view name, bool pure, std::span<const bitcode_buffer> bitcode,
                                             std::vector<std::string> deps);

/// NAME.sig in `dir`: the signature of library NAME, the signature slot of
/// the code object its bitcode files make (<ferry/code_object.hpp>): the
/// signer's Ed25519 public key (32 bytes), then the signature (64 bytes).
/// It covers every variant's bitcode and the manifest (name, symbols,
/// triples), not NAME.deps or purity: nodes load no dependencies and link
/// every ifunc against the allow-list. Format: docs/ifunc.md.
std::filesystem::path signature_file(const std::filesystem::path& dir, std::string_view name);
/// Sign library NAME in `dir` (`ferry sign --ifunc`): write NAME.sig over
/// any earlier one. The signed code, or read_library's errors.
result<wire::ifunc_code> sign_library(const std::filesystem::path& dir, std::string_view name,
                                      const signing_secret_key& key);

/// The registry key of an ifunc: a content hash of its code object's id, its
/// purity and its dependencies. The same library has the same key everywhere.
object_id key_of(const wire::ifunc_code& code);

/// The symbols of an ifunc library.
struct ifunc_symbols {
  std::string main, payload_bound, payload_init;
};
ifunc_symbols symbols_of(std::string_view name);

}  // namespace ferry::ifunc
