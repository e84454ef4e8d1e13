// ferry/code_registry.hpp — the code objects a program carries, and how to
// find the one for a host function.
//
// How code objects get into a program (docs/plugin.md):
//  * ferry_add_mobile(<target>) compiles every source once more per target
//    triple with the ferry plugin, which writes the code objects of that
//    translation unit; `ferry-pack` merges them into fat code objects and
//    generates one source for the target holding them in the retained ELF
//    section `ferry_code` (framing below).
//  * The target's own compiles also run the plugin, which puts one
//    `fn_index_record` per mobile function into the retained section
//    `ferry_fn_index`: the function's address and its mangled symbol. That is
//    how `&fn` (even of a `static` function) maps to a code object. (A target
//    compiled by GCC gets the records from a source the plugin generates,
//    which names each function by symbol: no `static` ones there.)
//  * The generated source calls ferry_register_code() from a constructor with
//    both sections' bounds (`__start_`/`__stop_` symbols, which must be used
//    in the executable's own code: libferry is a shared library).
//
// So, for a host function:   code_registry::global().find(&fn)
//     for a symbol (forward): code_registry::global().find_symbol(sym)
//     for a code object id:   code_registry::global().find_id(id)
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

/// One entry of the `ferry_fn_index` section. C layout (two pointers): the
/// plugin emits these as LLVM IR constants `{ ptr, ptr }`.
struct ferry_fn_index_record {
  const void* fn;      ///< the host function's address
  const char* symbol;  ///< its mangled symbol, NUL-terminated
};

/// Called by the source ferry-pack generates, at program start: registers
/// the `ferry_code` section [code_begin, code_end) and the address index
/// [index_begin, index_end) with code_registry::global(). Either range may
/// be empty. Safe to call more than once with overlapping sections (code
/// objects are deduplicated by id). Errors (a corrupt section) cannot be
/// returned from a constructor: they are kept and reported by
/// code_registry::load_status() and by every failed find().
extern "C" FERRY_API void ferry_register_code(const unsigned char* code_begin, const unsigned char* code_end,
                                    const ferry_fn_index_record* index_begin,
                                    const ferry_fn_index_record* index_end);

namespace ferry {

/// Name of the ELF section that carries encoded code objects.
inline constexpr std::string_view code_section_name = "ferry_code";
/// Name of the ELF section that carries ferry_fn_index_record entries.
inline constexpr std::string_view fn_index_section_name = "ferry_fn_index";

/// Encode code objects as the contents of a `ferry_code` section (also the
/// format of the plugin's per-translation-unit side files): a sequence of
/// records, each a u64 little-endian length followed by that many bytes of
/// code_object::encode(). No alignment or padding: the linker concatenates
/// sections of several objects byte for byte.
std::vector<std::uint8_t> encode_code_section(std::span<const code_object> objects);

/// Decode a `ferry_code` section (or side file): every record must be a
/// valid code object (code_object::decode checks lengths and hashes). An
/// all-zero run of 8 bytes where a length is expected is skipped (padding a
/// linker may insert between input sections). Errors: errc::bad_format,
/// errc::bad_version, errc::corrupt, naming the record's offset.
FERRY_API result<std::vector<code_object>> decode_code_section(std::span<const std::uint8_t> bytes);

/// One record of a `ferry_code` section, decoded on its own.
struct code_section_record {
  std::size_t offset;          ///< of the record's length field in the section
  result<code_object> object;  ///< the code object, or why this record is unusable
  /// For a damaged record: the function it names, if the start of its
  /// manifest is readable (code_object::peek_label); empty otherwise.
  code_object::label label;
};

/// Decode a `ferry_code` section record by record, so that one damaged code
/// object does not make the others unusable. A record whose length runs
/// past the end of the section (or a length cut short) ends the list: the
/// records after it cannot be found; it is returned as a failed record.
FERRY_API std::vector<code_section_record> decode_code_section_records(std::span<const std::uint8_t> bytes);

/// Thread-safe registry of the code objects this process carries (or was
/// given). Objects are never removed: pointers returned stay valid for the
/// registry's lifetime.
class FERRY_API code_registry {
 public:
  code_registry();
  code_registry(const code_registry&) = delete;
  code_registry& operator=(const code_registry&) = delete;

  /// The process-wide registry ferry_register_code() fills.
  static code_registry& global();

  /// Add one code object. The same object (same id) again is a no-op.
  /// Another object for a symbol already registered is errc::already_exists
  /// (two different versions of one function in one process).
  status add(code_object co);
  /// Add every intact code object of a `ferry_code` section. A damaged
  /// record does not stop the others: the function it names (if it can
  /// still be read, code_object::peek_label) is remembered as damaged, and
  /// find()/find_symbol() of it fail with the decode error (errc::corrupt,
  /// bad_format or bad_version, saying why) instead of errc::unknown_code.
  /// Returns the first error met (ok if every record was intact).
  status add_section(std::span<const std::uint8_t> bytes);
  /// Record that the host function at `fn` has mangled symbol `symbol`.
  void map_address(const void* fn, std::string_view symbol);

  /// The code object of a host function (`&fn`). errc::unknown_code if the
  /// address or its symbol has no code object; the decode error if this
  /// program's code object for it is damaged (add_section). A thread asking
  /// again for the function it asked for last, with nothing registered
  /// meanwhile, takes no lock.
  [[nodiscard]] result<const code_object*> find(const void* host_fn) const;
  /// The code object for a mangled symbol; errc::unknown_code if none, the
  /// decode error if this program's code object for it is damaged.
  [[nodiscard]] result<const code_object*> find_symbol(std::string_view symbol) const;
  /// The code object with this id; errc::unknown_code if none.
  [[nodiscard]] result<const code_object*> find_id(const object_id& id) const;
  /// `co.id()`, remembered from registration when `co` is one of this
  /// registry's objects (a call's hot path must not rehash its manifest).
  [[nodiscard]] object_id id_of(const code_object& co) const;
  /// Every registered code object, in registration order.
  [[nodiscard]] std::vector<const code_object*> list() const;
  /// The first error met while registering sections (ok if none).
  [[nodiscard]] status load_status() const;
  /// Remember a registration error (for load_status()).
  void note_load_error(status s);

 private:
  status unknown(std::string what) const;

  mutable std::shared_mutex mu_;
  std::uint64_t serial_;                      // tells this registry apart in a thread's last answers
  std::atomic<std::uint64_t> generation_{0};  // changes to symbol_of_, by_symbol_, damaged_ (under mu_)
  std::deque<code_object> objects_;  // deque: stable addresses
  std::map<std::string, const code_object*, std::less<>> by_symbol_;
  std::unordered_map<object_id, const code_object*> by_id_;
  std::unordered_map<const code_object*, object_id> id_of_;
  std::unordered_map<const void*, std::string> symbol_of_;
  std::map<std::string, status, std::less<>> damaged_;  // symbol -> why its code object is unusable
  status load_status_;
};

}  // namespace ferry
