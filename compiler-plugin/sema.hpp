// The AST side: signature and body rules at the end of the translation unit,
// and (emit mode) the entry thunks. Fills state::fns for the IR side.
#pragma once

#include <memory>

#include <clang/AST/ASTConsumer.h>
#include <clang/Frontend/CompilerInstance.h>

#include "state.hpp"

namespace ferry::plugin {

std::unique_ptr<clang::ASTConsumer> make_consumer(clang::CompilerInstance& ci, std::shared_ptr<state> st);

/// index= mode: write state::index_path, a C source (also valid C++) that
/// puts one `ferry_fn_index` record per mobile function of state::fns into
/// the target, naming the function by symbol (index.cpp).
void write_index(const state& st, clang::DiagnosticsEngine& d);

}  // namespace ferry::plugin
