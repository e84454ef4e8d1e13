// The AST side: signature and body rules at the end of the translation unit,
// and (emit mode) the entry thunks. Fills state::fns for the IR side.
#pragma once

#include <memory>

#include <clang/AST/ASTConsumer.h>
#include <clang/Frontend/CompilerInstance.h>

#include "state.hpp"

namespace ferry::plugin {

std::unique_ptr<clang::ASTConsumer> make_consumer(clang::CompilerInstance& ci, std::shared_ptr<state> st);

}  // namespace ferry::plugin
