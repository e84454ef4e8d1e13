// `ferry ifunc build NAME.c` and `ferry ifunc inspect DIR`: UCX ifunc
// libraries (docs/ifunc.md). `build` does what the prototype's Makefile rules
// did (build_ifunc_bc): one bitcode file per target, and NAME.deps listing the
// shared libraries a shared build of NAME.c links; `inspect` shows what a
// library directory holds, read as the compat library reads it.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/MemoryBuffer.h>

#include "commands.hpp"
#include "host_tools.hpp"
#include "ifunc/library.hpp"

namespace ferry::cli {
namespace {

namespace fs = std::filesystem;

struct build_options {
  std::string source;
  std::string targets = "x86_64,aarch64";
  std::string out_dir;
  std::vector<std::string> include_dirs;
  std::vector<std::string> defines;
  std::vector<std::string> libs;  // -l names: for NAME.deps, as the prototype's LDFLAGS
  std::string opt = "-O3";
};

// The compat headers: installed next to this ferry, or in the source tree it was built from.
std::string compat_include_dir() {
  const fs::path installed = fs::read_symlink("/proc/self/exe").parent_path() / ".." / "include" / "ferry" / "ucp_ifunc";
  return fs::exists(installed / "ucp" / "api" / "ucp.h") ? installed.lexically_normal().string()
                                                         : std::string(FERRY_IFUNC_COMPAT_DIR);
}

result<std::string> triple_of(std::string_view target) {
  if (target == "x86_64") return std::string("x86_64-unknown-linux-gnu");
  if (target == "aarch64") return std::string("aarch64-unknown-linux-gnu");
  if (std::count(target.begin(), target.end(), '-') >= 2) return std::string(target);  // a full triple
  return make_error(errc::invalid_argument, fmt::format("unknown target '{}' (x86_64, aarch64 or a triple)", target));
}

std::vector<std::string> compile_flags(const build_options& o) {
  std::vector<std::string> f = {"-std=c11", "-Wall", "-Wextra", o.opt, "-isystem", compat_include_dir()};
  for (const auto& d : o.include_dirs) f.push_back("-I" + d);
  for (const auto& d : o.defines) f.push_back("-D" + d);
  return f;
}

// Is `path` a shared object (ELF), not a linker script such as libc.so?
bool is_elf(const std::string& path) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  return in.read(magic, 4) && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
}

// The libraries a shared build of the source links, by file name (the
// prototype: gcc -shared -Wl,--trace | basename | sort -u), without the
// linker scripts the prototype also listed (they cannot be loaded).
result<std::vector<std::string>> dependencies(const build_options& o) {
  std::vector<std::string> argv = {FERRY_IFUNC_CLANG};
  for (auto& f : compile_flags(o)) argv.push_back(f);
  for (const auto& s : {"-shared", "-fPIC", "-o", "/dev/null", "-Wl,--trace"}) argv.emplace_back(s);
  argv.push_back(o.source);
  for (const auto& l : o.libs) argv.push_back("-l" + l);
  auto out = run_tool(argv);
  if (!out) return out.error();
  std::set<std::string> libs;
  std::istringstream lines(*out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(".so") == std::string::npos) continue;
    if (auto open = line.find('('), close = line.rfind(')'); open != std::string::npos && close > open)
      line = line.substr(open + 1, close - open - 1);  // "archive(member)" and "-lc (/lib/.../libc.so)"
    if (is_elf(line)) libs.insert(fs::path(line).filename().string());
  }
  return std::vector<std::string>(libs.begin(), libs.end());
}

void build(const build_options& o) {
  const fs::path src(o.source);
  const std::string name = src.stem().string();
  const fs::path out = o.out_dir.empty() ? src.parent_path() : fs::path(o.out_dir);
  std::error_code ec;
  fs::create_directories(out.empty() ? "." : out, ec);
  std::stringstream targets(o.targets);
  for (std::string t; std::getline(targets, t, ',');) {
    auto triple = triple_of(t);
    if (!triple) {
      fmt::print(stderr, "ferry: {}\n", triple.error().describe());
      return set_exit_code(2);
    }
    const fs::path bc = out / fmt::format("{}.{}.bc", name, *triple);
    std::vector<std::string> argv = {FERRY_IFUNC_CLANG, "--target=" + *triple, "-c", "-emit-llvm"};
    for (auto& f : compile_flags(o)) argv.push_back(f);
    argv.insert(argv.end(), {o.source, "-o", bc.string()});
    if (auto r = run_tool(argv); !r) {
      fmt::print(stderr, "ferry: {}\n", r.error().describe());
      return set_exit_code(1);
    }
    fmt::print("{}\n", bc.string());
  }
  auto deps = dependencies(o);
  if (!deps) {
    fmt::print(stderr, "ferry: {}\n", deps.error().describe());
    return set_exit_code(1);
  }
  const fs::path deps_file = out / fmt::format("{}.deps", name);
  std::string text;
  for (const auto& d : *deps) text += d + "\n";
  if (FILE* f = std::fopen(deps_file.c_str(), "w"); f && std::fputs(text.c_str(), f) >= 0 && std::fclose(f) == 0) {
    fmt::print("{}\n", deps_file.string());
  } else {
    fmt::print(stderr, "ferry: cannot write {}\n", deps_file.string());
    set_exit_code(1);
  }
}

// Which of NAME's three functions a bitcode file defines.
std::string defined_functions(const std::string& name, const code_variant& v) {
  llvm::LLVMContext ctx;
  auto buf = llvm::MemoryBuffer::getMemBuffer(
      llvm::StringRef(reinterpret_cast<const char*>(v.bitcode.data()), v.bitcode.size()), name, false);
  auto m = llvm::getLazyBitcodeModule(buf->getMemBufferRef(), ctx);
  if (!m) {
    llvm::consumeError(m.takeError());
    return "unreadable";
  }
  const auto s = ifunc::symbols_of(name);
  std::string out;
  for (const auto* sym : {&s.main, &s.payload_bound, &s.payload_init}) {
    const llvm::Function* f = (*m)->getFunction(*sym);
    const bool defined = f && !f->isDeclaration();
    out += fmt::format("{}{}{}", out.empty() ? "" : " ", defined ? "" : "MISSING:", *sym);
  }
  return out;
}

void inspect(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (const auto dot = f.find('.'); dot != std::string::npos && dot > 0 && f.ends_with(".bc")) names.insert(f.substr(0, dot));
  }
  if (ec) {
    fmt::print(stderr, "ferry: cannot list {}: {}\n", dir, ec.message());
    return set_exit_code(1);
  }
  if (names.empty()) {
    fmt::print(stderr, "ferry: no ifunc library (NAME.<triple>.bc) in {}\n", dir);
    return set_exit_code(2);
  }
  for (const auto& name : names) {
    auto lib = ifunc::read_library(dir, name, false);
    if (!lib) {
      fmt::print("{}: {}\n", name, lib.error().describe());
      set_exit_code(1);
      continue;
    }
    fmt::print("{}  code {}\n", name, lib->code.id().to_string());
    for (const auto& v : lib->code.variants)
      fmt::print("  {:<28} {:>8} bytes  LLVM {:<8} {}\n", v.triple, v.bitcode.size(), v.llvm_version,
                 defined_functions(name, v));
    std::string deps;
    for (const auto& d : lib->deps) deps += (deps.empty() ? "" : " ") + d;
    fmt::print("  deps: {}\n", deps.empty() ? "(none)" : deps);
  }
}

}  // namespace

void add_ifunc_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("ifunc", "UCX ifunc libraries for the compat API (docs/ifunc.md)");
  cmd->require_subcommand(1);
  auto o = std::make_shared<build_options>();
  auto* b = cmd->add_subcommand("build", "Compile NAME.c into NAME.<triple>.bc per target and NAME.deps");
  b->add_option("SOURCE", o->source, "The ifunc library, NAME.c")->required()->check(CLI::ExistingFile);
  b->add_option("--targets", o->targets, "Comma-separated: x86_64, aarch64 or full triples")->capture_default_str();
  b->add_option("-o,--out-dir", o->out_dir, "Where to write (default: next to SOURCE)");
  b->add_option("-I", o->include_dirs, "Include directory (repeatable)");
  b->add_option("-D", o->defines, "Preprocessor definition (repeatable)");
  b->add_option("-l", o->libs, "Library the ifunc uses, for NAME.deps (repeatable)");
  b->add_option("--opt", o->opt, "Optimization flag")->capture_default_str();
  b->callback([o] { build(*o); });
  auto dir = std::make_shared<std::string>();
  auto* i = cmd->add_subcommand("inspect", "Show the ifunc libraries in a directory: code id, targets, functions, deps");
  i->add_option("DIR", *dir, "Library directory (UCX_IFUNC_LIB_DIR)")->required()->check(CLI::ExistingDirectory);
  i->callback([dir] { inspect(*dir); });
}

}  // namespace ferry::cli
