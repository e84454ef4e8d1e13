// The IR side of the plugin: registered into clang's pipeline through
// CodeGenOptions::PassBuilderCallbacks, so `-fplugin=` is all a user passes.
#pragma once

#include <memory>

#include <llvm/Passes/PassBuilder.h>

#include "state.hpp"

namespace ferry::plugin {

/// OptimizerLastEP: per mobile function, reachability checks; then either
/// the code object (emit mode, written to state::emit_path as a `ferry_code`
/// section image) or the `ferry_fn_index` records (the target's compile).
void register_passes(llvm::PassBuilder& pb, std::shared_ptr<state> st);

}  // namespace ferry::plugin
