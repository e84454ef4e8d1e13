// The [[ferry::mobile]] attribute: spellings, what it may appertain to, and
// the mark it leaves (an AnnotateAttr "ferry.mobile", inherited by
// redeclarations and instantiated with templates). Signature and body rules
// need complete (instantiated) types and run at the end of the translation
// unit (sema.cpp).
#include <clang/AST/Attr.h>
#include <clang/AST/DeclCXX.h>
#include <clang/Sema/ParsedAttr.h>
#include <clang/Sema/Sema.h>

#include "diagnostics.hpp"
#include "state.hpp"

namespace ferry::plugin {
namespace {

std::string describe(const clang::Decl* d) {
  std::string what = llvm::isa<clang::TypeDecl>(d)                                     ? "type"
                     : llvm::isa<clang::VarDecl>(d) || llvm::isa<clang::FieldDecl>(d) ? "variable"
                                                                                       : "this declaration";
  if (const auto* nd = llvm::dyn_cast<clang::NamedDecl>(d); nd && nd->getIdentifier())
    what += " '" + nd->getNameAsString() + "'";
  return what;
}

struct mobile_attr : clang::ParsedAttrInfo {
  mobile_attr() {
    static constexpr Spelling spellings[] = {{clang::ParsedAttr::AS_GNU, "ferry_mobile"},
                                             {clang::ParsedAttr::AS_C23, "ferry::mobile"},
                                             {clang::ParsedAttr::AS_CXX11, "ferry::mobile"}};
    Spellings = spellings;
  }

  bool diagAppertainsToDecl(clang::Sema& s, const clang::ParsedAttr& a, const clang::Decl* d) const override {
    if (llvm::isa<clang::FunctionDecl>(d)) return true;
    s.Diag(a.getLoc(), diag::subject(s.getDiagnostics())) << describe(d);
    return false;
  }

  AttrHandling handleDeclAttribute(clang::Sema& s, clang::Decl* d, const clang::ParsedAttr& a) const override {
    auto* fd = llvm::cast<clang::FunctionDecl>(d);
    auto& diags = s.getDiagnostics();
    if (const auto* m = llvm::dyn_cast<clang::CXXMethodDecl>(fd)) {
      if (m->getParent()->isLambda()) {
        s.Diag(a.getLoc(), diag::lambda(diags));
        return AttributeNotApplied;
      }
      if (!m->isStatic()) {
        s.Diag(a.getLoc(), diag::member(diags)) << fd;
        return AttributeNotApplied;
      }
    }
    if (fd->isVariadic()) {
      s.Diag(a.getLoc(), diag::variadic(diags)) << fd;
      return AttributeNotApplied;
    }
    d->addAttr(clang::AnnotateAttr::Create(s.Context, mobile_annotation, nullptr, 0, a.getRange()));
    return AttributeApplied;
  }
};

clang::ParsedAttrInfoRegistry::Add<mobile_attr> registered("ferry_mobile", "[[ferry::mobile]]: a function that travels");

}  // namespace
}  // namespace ferry::plugin
