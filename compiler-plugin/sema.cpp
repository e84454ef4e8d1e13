// End-of-translation-unit checks of every mobile function definition
// (templates: every instantiation), and in emit mode the AST-built thunk
// that lets clang itself do the ABI work of calling the function from an
// argument block (see build_thunk).
#include "sema.hpp"

#include <set>
#include <vector>

#include <clang/AST/ASTContext.h>
#include <clang/AST/Attr.h>
#include <clang/AST/DeclCXX.h>
#include <clang/AST/DeclTemplate.h>
#include <clang/AST/Mangle.h>
#include <clang/AST/RecursiveASTVisitor.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Sema/Sema.h>

#include "allow_list.hpp"
#include "diagnostics.hpp"

namespace ferry::plugin {
namespace {

using namespace clang;

bool is_record_named(QualType t, llvm::StringRef ns, llvm::StringRef name) {
  const auto* rd = t.isNull() ? nullptr : t->getAsRecordDecl();
  if (!rd || rd->getName() != name) return false;
  const DeclContext* dc = rd->getDeclContext()->getRedeclContext();
  if (ns.empty()) return dc->isTranslationUnit();
  const auto* nd = llvm::dyn_cast<NamespaceDecl>(dc);
  return nd && nd->getName() == ns && nd->getParent()->getRedeclContext()->isTranslationUnit();
}

// ferry::context& (C++) or ferry_context* (C, and accepted in C++: same ABI).
bool is_context_param(QualType t) {
  t = t.getCanonicalType();
  if (t->isLValueReferenceType()) return is_record_named(t->getPointeeType(), "ferry", "context");
  if (t->isPointerType()) return is_record_named(t->getPointeeType(), "", "ferry_context");
  return false;
}

bool is_ref_type(QualType t) {
  t = t.getCanonicalType();
  return is_record_named(t, "", "ferry_ref") ||
         (is_record_named(t, "ferry", "ref") && llvm::isa<ClassTemplateSpecializationDecl>(t->getAsRecordDecl()));
}

PrintingPolicy readable_policy(const ASTContext& c) {
  PrintingPolicy p(c.getLangOpts());
  p.FullyQualifiedName = true;
  p.SuppressScope = false;
  p.PrintCanonicalTypes = true;
  p.SuppressTagKeyword = c.getLangOpts().CPlusPlus;
  return p;
}

// Canonical spelling: the same on every triple, so signature hashes agree.
std::string readable_type(QualType t, const ASTContext& c) {
  return t.getCanonicalType().getUnqualifiedType().getAsString(readable_policy(c));
}

bool is_mobile(const Decl* d) {
  for (const auto* a : d->specific_attrs<AnnotateAttr>())
    if (a->getAnnotation() == mobile_annotation) return true;
  return false;
}

// Why a parameter or result type cannot travel (nullptr: it can).
const char* travel_problem(QualType t, const ASTContext& c) {
  if (t->isReferenceType()) return diag::is_reference;
  if (t->isAnyPointerType() || t->isMemberPointerType() || t->isBlockPointerType()) return diag::is_pointer;
  if (c.getLangOpts().CPlusPlus && !t.isTriviallyCopyableType(c)) return diag::not_trivially_copyable;
  return nullptr;
}

// Rules on the signature; fills `out` (except symbol) when they all hold.
bool check_signature(FunctionDecl* fd, mobile_fn& out, DiagnosticsEngine& d) {
  const ASTContext& c = fd->getASTContext();
  bool ok = true;
  if (fd->getNumParams() == 0 || !is_context_param(fd->getParamDecl(0)->getType())) {
    const SourceLocation at = fd->getNumParams() ? fd->getParamDecl(0)->getLocation() : fd->getLocation();
    d.Report(at, diag::context(d)) << fd;
    ok = false;
  }
  std::uint64_t off = 0;
  for (unsigned i = 1; i < fd->getNumParams(); ++i) {
    const ParmVarDecl* p = fd->getParamDecl(i);
    const QualType t = p->getType();
    if (is_context_param(t)) continue;  // misplaced context: diag::context said so
    if (const char* why = travel_problem(t, c)) {
      d.Report(p->getLocation(), diag::param(d)) << p << fd << t << why;
      ok = false;
      continue;
    }
    code_param cp;
    cp.what = is_ref_type(t) ? code_param::kind::ref : code_param::kind::value;
    cp.size = static_cast<std::uint32_t>(c.getTypeSizeInChars(t).getQuantity());
    cp.align = static_cast<std::uint32_t>(c.getTypeAlignInChars(t).getQuantity());
    cp.type = readable_type(t, c);
    // Same rule as ferry::detail::arg_layout (<ferry/mobile.hpp>): C struct
    // layout in declaration order, no tail padding.
    off = (off + cp.align - 1) / cp.align * cp.align;
    out.offsets.push_back(static_cast<std::uint32_t>(off));
    off += cp.size;
    out.params.push_back(std::move(cp));
  }
  out.args_size = static_cast<std::uint32_t>(off);
  const QualType r = fd->getReturnType();
  if (!r->isVoidType()) {
    if (const char* why = travel_problem(r, c)) {
      d.Report(fd->getReturnTypeSourceRange().getBegin(), diag::result(d)) << fd << r << why;
      ok = false;
    } else {
      out.result_size = static_cast<std::uint32_t>(c.getTypeSizeInChars(r).getQuantity());
    }
  }
  out.result_type = r->isVoidType() ? "void" : readable_type(r, c);
  std::string name;
  llvm::raw_string_ostream os(name);
  fd->getNameForDiagnostic(os, readable_policy(c), /*Qualified=*/true);
  out.name = std::move(name);
  out.loc = fd->getLocation();
  return ok;
}

// Finds mobile function definitions, including template instantiations.
struct collector : RecursiveASTVisitor<collector> {
  std::vector<FunctionDecl*> found;
  bool shouldVisitTemplateInstantiations() const { return true; }
  bool VisitFunctionDecl(FunctionDecl* fd) {
    if (fd->doesThisDeclarationHaveABody() && !fd->isDependentContext() && !fd->isInvalidDecl() && is_mobile(fd))
      found.push_back(fd);
    return true;
  }
};

// The body rules, over a mobile function and every function it reaches in
// this translation unit. Each reached function is checked once per TU (its
// diagnostics name the first mobile function that reached it).
class body_checker : public RecursiveASTVisitor<body_checker> {
 public:
  explicit body_checker(DiagnosticsEngine& d) : diags_(d) {}

  void check(FunctionDecl* root) {
    root_ = root;
    seen_.insert(root);
    std::vector<const FunctionDecl*> work{root};
    while (!work.empty()) {
      current_ = work.back();
      work.pop_back();
      pending_.clear();
      TraverseDecl(const_cast<FunctionDecl*>(current_));
      work.insert(work.end(), pending_.begin(), pending_.end());
    }
  }

  bool shouldVisitTemplateInstantiations() const { return true; }
  bool shouldVisitImplicitCode() const { return true; }
  // Unevaluated operands and types never run: sizeof(f()), decltype, ...
  bool TraverseTypeLoc(TypeLoc) { return true; }
  bool TraverseUnaryExprOrTypeTraitExpr(UnaryExprOrTypeTraitExpr*) { return true; }
  bool TraverseCXXNoexceptExpr(CXXNoexceptExpr*) { return true; }
  bool TraverseStaticAssertDecl(StaticAssertDecl*) { return true; }
  // A lambda's body is checked when its call operator is used.
  bool TraverseLambdaExpr(LambdaExpr* l) {
    for (Expr* init : l->capture_inits())
      if (init) TraverseStmt(init);
    return true;
  }

  bool VisitDeclRefExpr(DeclRefExpr* e) {
    use(e->getDecl(), e->getExprLoc());
    return true;
  }
  bool VisitMemberExpr(MemberExpr* e) {
    use(e->getMemberDecl(), e->getExprLoc());
    return true;
  }
  bool VisitCXXConstructExpr(CXXConstructExpr* e) {
    if (!e->getConstructor()->isTrivial()) use_function(e->getConstructor(), e->getExprLoc());
    return true;
  }
  bool VisitCXXNewExpr(CXXNewExpr* e) {
    if (auto* op = e->getOperatorNew()) use_function(op, e->getExprLoc());
    return true;
  }
  bool VisitCXXDeleteExpr(CXXDeleteExpr* e) {
    if (auto* op = e->getOperatorDelete()) use_function(op, e->getExprLoc());
    return true;
  }
  bool VisitCXXBindTemporaryExpr(CXXBindTemporaryExpr* e) {
    if (const auto* dtor = e->getTemporary()->getDestructor()) use_function(dtor, e->getExprLoc());
    return true;
  }
  bool VisitVarDecl(VarDecl* v) {
    if (!v->hasGlobalStorage())
      if (const auto* rd = v->getType()->getAsCXXRecordDecl(); rd && rd->hasDefinition() && !rd->hasTrivialDestructor())
        if (const auto* dtor = rd->getDestructor()) use_function(dtor, v->getLocation());
    return true;
  }
  bool VisitGCCAsmStmt(GCCAsmStmt* s) {
    report(s->getAsmLoc(), diag::inline_asm(diags_), [&](auto& b) { b << root_; });
    return true;
  }
  bool VisitMSAsmStmt(MSAsmStmt* s) {
    report(s->getAsmLoc(), diag::inline_asm(diags_), [&](auto& b) { b << root_; });
    return true;
  }

 private:
  void use(const ValueDecl* d, SourceLocation at) {
    if (const auto* fd = llvm::dyn_cast<FunctionDecl>(d)) return use_function(fd, at);
    const auto* v = llvm::dyn_cast<VarDecl>(d);
    if (!v || !v->hasGlobalStorage()) return;
    if (v->getTLSKind() != VarDecl::TLS_None)
      report(at, diag::thread_local_var(diags_), [&](auto& b) { b << root_ << v; });
    else if (!v->getType().isConstQualified())
      report(at, diag::mutable_global(diags_), [&](auto& b) { b << root_ << v; });
  }

  void use_function(const FunctionDecl* fd, SourceLocation at) {
    if (is_mobile(fd)) return;  // checked (and extracted) on its own
    const FunctionDecl* def = nullptr;
    if (fd->hasBody(def)) {
      if (seen_.insert(def).second) {
        reached_from_[def] = {current_, at};
        pending_.push_back(def);
      }
      return;
    }
    if (fd->isTrivial() || fd->isDefaulted()) return;
    // __builtin_* and the std:: builtins clang folds (std::move, std::forward...).
    if (fd->getBuiltinID() != 0 && (fd->getName().starts_with("__builtin") || fd->isInStdNamespace())) return;
    if ((fd->isExternC() || !fd->getASTContext().getLangOpts().CPlusPlus) && fd->getIdentifier() &&
        is_allowed_external(fd->getName()))
      return;
    report(at, diag::call(diags_), [&](auto& b) { b << root_ << fd; });
  }

  // An error at `at` (args streamed by `fill`), then one note per call on the
  // chain from the mobile function to the function being checked.
  template <class Fill>
  void report(SourceLocation at, unsigned id, Fill&& fill) {
    {
      auto b = diags_.Report(at, id);
      fill(b);
    }
    for (const FunctionDecl* f = current_; f && f != root_;) {
      const auto it = reached_from_.find(f);
      if (it == reached_from_.end()) break;
      diags_.Report(it->second.second, diag::reached_from(diags_)) << f << root_;
      f = it->second.first;
    }
  }

 private:
  DiagnosticsEngine& diags_;
  const FunctionDecl* root_ = nullptr;
  const FunctionDecl* current_ = nullptr;
  std::set<const FunctionDecl*> seen_;
  std::vector<const FunctionDecl*> pending_;
  std::map<const FunctionDecl*, std::pair<const FunctionDecl*, SourceLocation>> reached_from_;
};

// The thunk `R __ferry_call.<symbol>(void* cx, const void* args)` calls the
// mobile function with each parameter read from its offset in the argument
// block. Building it as AST lets clang's own code generation lower the call
// for the target ABI (struct-by-value, sret, byval, ...) on every triple;
// extract.cpp then wraps it in the uniform entry, which hands it an aligned
// copy of the argument block.
FunctionDecl* build_thunk(CompilerInstance& ci, FunctionDecl* f, const mobile_fn& info, unsigned index) {
  Sema& s = ci.getSema();
  ASTContext& c = s.Context;
  const SourceLocation l = f->getLocation();
  const QualType void_ptr = c.VoidPtrTy;
  const QualType const_void_ptr = c.getPointerType(c.VoidTy.withConst());
  const QualType fn_type = c.getFunctionType(f->getReturnType(), {void_ptr, const_void_ptr}, {});
  auto* tu = c.getTranslationUnitDecl();
  auto* thunk = FunctionDecl::Create(c, tu, l, l, DeclarationName(&c.Idents.get("__ferry_call_" + std::to_string(index))),
                                     fn_type, c.getTrivialTypeSourceInfo(fn_type, l), SC_None);
  auto param = [&](const char* name, QualType t) {
    return ParmVarDecl::Create(c, thunk, l, l, &c.Idents.get(name), t, c.getTrivialTypeSourceInfo(t, l), SC_None,
                               nullptr);
  };
  ParmVarDecl* cx = param("cx", void_ptr);
  ParmVarDecl* args = param("args", const_void_ptr);
  thunk->setParams({cx, args});
  thunk->addAttr(AsmLabelAttr::CreateImplicit(c, info.call_symbol, /*IsLiteralLabel=*/false));

  Sema::ContextRAII in_thunk(s, thunk);
  s.PushFunctionScope();
  bool failed = false;
  auto check = [&](auto r) {
    if (r.isInvalid()) failed = true;
    return r.isInvalid() ? nullptr : r.get();
  };
  auto ref = [&](ValueDecl* d) { return check(s.BuildDeclarationNameExpr(CXXScopeSpec(), DeclarationNameInfo(d->getDeclName(), l), d)); };
  auto cast = [&](QualType to, Expr* e) -> Expr* {
    return e ? check(s.BuildCStyleCastExpr(l, c.getTrivialTypeSourceInfo(to, l), l, e)) : nullptr;
  };
  auto deref = [&](Expr* e) -> Expr* { return e ? check(s.CreateBuiltinUnaryOp(l, UO_Deref, e)) : nullptr; };

  std::vector<Expr*> call_args;
  const QualType p0 = f->getParamDecl(0)->getType();
  call_args.push_back(p0->isReferenceType() ? deref(cast(c.getPointerType(p0.getNonReferenceType()), ref(cx)))
                                            : cast(p0, ref(cx)));
  for (unsigned i = 1; i < f->getNumParams(); ++i) {
    Expr* bytes = cast(c.getPointerType(c.CharTy.withConst()), ref(args));
    Expr* off = IntegerLiteral::Create(c, llvm::APInt(c.getTypeSize(c.getSizeType()), info.offsets[i - 1]),
                                       c.getSizeType(), l);
    Expr* at = bytes ? check(s.CreateBuiltinBinOp(l, BO_Add, bytes, off)) : nullptr;
    call_args.push_back(deref(cast(c.getPointerType(f->getParamDecl(i)->getType().getUnqualifiedType()), at)));
  }
  Expr* callee = ref(f);
  Expr* call = failed ? nullptr : check(s.BuildCallExpr(nullptr, callee, l, call_args, l));
  Stmt* body = nullptr;
  if (call) {
    if (f->getReturnType()->isVoidType()) {
      Stmt* stmts[] = {call, ReturnStmt::Create(c, l, nullptr, nullptr)};
      body = CompoundStmt::Create(c, stmts, FPOptionsOverride(), l, l);
    } else if (Stmt* ret = check(s.BuildReturnStmt(l, call))) {
      body = CompoundStmt::Create(c, {ret}, FPOptionsOverride(), l, l);
    }
  }
  s.PopFunctionScopeInfo();
  if (!body) return nullptr;
  thunk->setBody(body);
  tu->addDecl(thunk);
  return thunk;
}

class consumer : public ASTConsumer {
 public:
  consumer(CompilerInstance& ci, std::shared_ptr<state> st) : ci_(ci), st_(std::move(st)) {}

  void HandleTranslationUnit(ASTContext& c) override {
    auto& d = ci_.getDiagnostics();
    if (d.hasErrorOccurred()) return;
    collector found;
    found.TraverseDecl(c.getTranslationUnitDecl());
    ASTNameGenerator mangler(c);
    std::vector<std::pair<FunctionDecl*, std::string>> good;
    body_checker bodies(d);
    for (FunctionDecl* fd : found.found) {
      mobile_fn info;
      const bool ok = check_signature(fd, info, d);
      bodies.check(fd);
      if (!ok) continue;
      info.symbol = mangler.getName(fd);
      info.call_symbol = call_prefix + info.symbol;
      switch (c.GetGVALinkageForFunction(fd)) {
        case GVA_Internal: info.linkage = linkage::internal; break;
        case GVA_StrongExternal:
        case GVA_StrongODR: info.linkage = linkage::strong; break;
        case GVA_AvailableExternally:
        case GVA_DiscardableODR: info.linkage = linkage::discardable; break;
      }
      if (info.linkage == linkage::internal && !st_->index_path.empty()) {
        d.Report(fd->getLocation(), diag::linkage(d)) << fd;
        continue;
      }
      good.emplace_back(fd, info.symbol);
      st_->fns.emplace(info.symbol, std::move(info));
    }
    if (d.hasErrorOccurred()) return;
    if (!st_->index_path.empty()) write_index(*st_, d);
    if (st_->emit_path.empty()) return;
    unsigned index = 0;
    for (auto& [fd, symbol] : good) {
      FunctionDecl* thunk = build_thunk(ci_, fd, st_->fns.at(symbol), index++);
      if (!thunk) {
        d.Report(fd->getLocation(), diag::plugin(d)) << "internal error: could not build the entry thunk";
        continue;
      }
      // The main action's consumer (code generation) runs after this one.
      ci_.getASTConsumer().HandleTopLevelDecl(DeclGroupRef(thunk));
    }
  }

 private:
  CompilerInstance& ci_;
  std::shared_ptr<state> st_;
};

}  // namespace

std::unique_ptr<clang::ASTConsumer> make_consumer(clang::CompilerInstance& ci, std::shared_ptr<state> st) {
  return std::make_unique<consumer>(ci, std::move(st));
}

}  // namespace ferry::plugin
