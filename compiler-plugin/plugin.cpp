// libferry-plugin.so: `clang -fplugin=libferry-plugin.so` registers the
// [[ferry::mobile]] attribute (attribute.cpp), checks mobile functions at the
// end of the translation unit (sema.cpp) and extracts code objects from the
// optimized module (extract.cpp). docs/plugin.md is the user's guide.
//
// Plugin arguments (-fplugin-arg-ferry-<arg>):
//   emit=<file>   write this TU's code objects to <file> (ferry_add_mobile
//                 passes it on its per-triple compiles; see FerryMobile.cmake)
//   index=<file>  write a C source with this TU's address-index records, for
//                 a target compiled by GCC (ferry_add_mobile passes it on one
//                 per-triple compile of such a target; index.cpp)
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/FrontendPluginRegistry.h>

#include "diagnostics.hpp"
#include "extract.hpp"
#include "sema.hpp"
#include "state.hpp"

namespace ferry::plugin {
namespace {

class action : public clang::PluginASTAction {
 public:
  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance& ci, llvm::StringRef) override {
    st_->diags = &ci.getDiagnostics();
    ci.getCodeGenOpts().PassBuilderCallbacks.push_back([st = st_](llvm::PassBuilder& pb) { register_passes(pb, st); });
    return make_consumer(ci, st_);
  }

  bool ParseArgs(const clang::CompilerInstance& ci, const std::vector<std::string>& args) override {
    for (const auto& a : args) {
      if (a.starts_with("emit=") && a.size() > 5) {
        st_->emit_path = a.substr(5);
        continue;
      }
      if (a.starts_with("index=") && a.size() > 6) {
        st_->index_path = a.substr(6);
        continue;
      }
      auto& d = ci.getDiagnostics();
      d.Report(diag::plugin(d)) << ("unknown plugin argument '" + a + "' (known: emit=<file>, index=<file>)");
      return false;
    }
    return true;
  }

  // Before the main action: this consumer's end-of-TU checks (and thunks)
  // must come before code generation's.
  ActionType getActionType() override { return AddBeforeMainAction; }

 private:
  std::shared_ptr<state> st_ = std::make_shared<state>();
};

clang::FrontendPluginRegistry::Add<action> registered("ferry", "ferry::mobile checks and code objects");

}  // namespace
}  // namespace ferry::plugin
