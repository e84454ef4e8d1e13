// ⑦ What a code object's bitcode says about how its calls behave, read
// without parsing it: a module's symbol table keeps the names of the
// functions it calls, so a runtime-API name that appears nowhere in the
// bitcode is never called. Conservative: the name appearing anywhere counts.
#pragma once

#include <string_view>

#include <ferry/code_object.hpp>

namespace ferry::code {

/// Does any variant's bitcode name `symbol`?
inline bool names_symbol(const code_object& co, std::string_view symbol) {
  for (const auto& v : co.variants) {
    const std::string_view bits(reinterpret_cast<const char*>(v.bitcode.data()), v.bitcode.size());
    if (bits.find(symbol) != std::string_view::npos) return true;
  }
  return false;
}

/// Its calls may block waiting for another node: a nested call
/// (ferry_invoke), a pull (ferry_fetch) or a move (ferry_migrate).
inline bool may_block(const code_object& co) {
  return names_symbol(co, "ferry_invoke") || names_symbol(co, "ferry_fetch") || names_symbol(co, "ferry_migrate");
}
/// Its calls may move on to other nodes (ferry_forward).
inline bool may_forward(const code_object& co) { return names_symbol(co, "ferry_forward"); }

}  // namespace ferry::code
