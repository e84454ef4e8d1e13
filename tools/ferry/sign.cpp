// `ferry sign`: Ed25519 keys, and signing the code objects a program carries
// (its `ferry_code` section) in place. docs/security.md.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/Error.h>

#include <ferry/code_registry.hpp>
#include <ferry/code_signing.hpp>

#include "commands.hpp"
#include "core/posix_io.hpp"
#include "ifunc/library.hpp"

namespace ferry::cli {
namespace {

struct sign_args {
  std::string keygen;
  std::string key;
  std::string trust_keys;
  bool check = false;
  bool ifunc = false;
  std::vector<std::string> files;
};

// Where the code sections of `path` are: [offset, size) in the file. An ELF
// file's `ferry_code` sections, or else the whole file (a side file).
result<std::vector<std::pair<std::uint64_t, std::uint64_t>>> code_sections(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(errc::io_error, fmt::format("{}: {}", path, ec.message()));
  auto file = llvm::object::ObjectFile::createObjectFile(path);
  if (!file) {
    llvm::consumeError(file.takeError());
    return std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, size}};  // not an object file: a code section
  }
  const llvm::object::ObjectFile& obj = *file->getBinary();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (const auto& sec : obj.sections()) {
    auto name = sec.getName();
    if (!name || std::string_view(*name) != code_section_name) continue;
    auto contents = sec.getContents();
    if (!contents) {
      llvm::consumeError(contents.takeError());
      return make_error(errc::bad_format, fmt::format("{}: cannot read its {} section", path, code_section_name));
    }
    out.emplace_back(static_cast<std::uint64_t>(contents->data() - obj.getData().data()), contents->size());
  }
  if (out.empty())
    return make_error(errc::not_found, fmt::format("{}: no {} section: it carries no code objects (was it built "
                                                   "with ferry_add_mobile()?)",
                                                   path, code_section_name));
  return out;
}

result<std::vector<std::uint8_t>> read_range(int fd, std::uint64_t offset, std::uint64_t size) {
  std::vector<std::uint8_t> bytes(size);
  if (::pread(fd, bytes.data(), size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size))
    return make_error(errc::io_error, fmt::format("read: {}", std::strerror(errno)));
  return bytes;
}

// Sign (key) or check (trusted) every code object of `path`; prints one line per file or object.
status sign_file(const std::string& path, const signing_secret_key* key, const std::vector<signing_public_key>* trusted) {
  auto sections = code_sections(path);
  if (!sections) return sections.error();
  const int fd = ::open(path.c_str(), (key ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io_error, fmt::format("{}: {}", path, std::strerror(errno)));
  status first;
  std::size_t count = 0, refused = 0;
  for (const auto& [offset, size] : *sections) {
    auto bytes = read_range(fd, offset, size);
    if (!bytes) { first = bytes.error(); break; }
    if (key) {
      auto n = sign_code_section(*bytes, *key);
      if (!n) { first = make_error(n.code(), fmt::format("{}: {}", path, n.error().message())); break; }
      if (auto s = core::write_all(fd, core::bytes_of(bytes->data(), bytes->size()), offset); !s) { first = s; break; }
      count += *n;
      continue;
    }
    for (auto& rec : decode_code_section_records(*bytes)) {
      ++count;
      const status s = rec.object ? rec.object->verify_signature(*trusted) : rec.object.error();
      if (!s.ok()) ++refused;
      fmt::print("{}  {}\n", s.ok() ? "accepted" : "REFUSED ", s.ok() ? rec.object->name : s.describe());
      if (!s.ok() && first.ok()) first = s;
    }
  }
  ::close(fd);
  if (!first.ok() && key) return first;
  if (key) {
    fmt::print("{}: signed {} code object{}\n", path, count, count == 1 ? "" : "s");
    return {};
  }
  fmt::print("{}: {} of {} code objects accepted\n", path, count - refused, count);
  return first;
}

// Sign (key) or check (trusted) the ifunc library `lib` = DIR/NAME (its
// NAME.<triple>.bc files): signing writes DIR/NAME.sig.
status sign_ifunc(const std::string& lib, const signing_secret_key* key,
                  const std::vector<signing_public_key>* trusted) {
  const std::filesystem::path p(lib);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  const std::string name = p.filename().string();
  if (key) {
    auto c = ifunc::sign_library(dir, name, *key);
    if (!c) return c.error();
    fmt::print("{}: signed ifunc library {} ({} variant{}) -> {}\n", lib, name, c->code.variants.size(),
               c->code.variants.size() == 1 ? "" : "s", ifunc::signature_file(dir, name).string());
    return {};
  }
  auto c = ifunc::read_library(dir, name, false);
  const status s = c ? c->code.verify_signature(*trusted) : c.error();
  fmt::print("{}  {}\n", s.ok() ? "accepted" : "REFUSED ", s.ok() ? name : s.describe());
  return s;
}

int run_sign(const sign_args& a) {
  auto fail = [](const status& s) {
    fmt::print(stderr, "ferry sign: {}\n", s.describe());
    return 1;
  };
  if (!a.keygen.empty()) {
    const auto keys = generate_signing_key();
    if (auto s = write_signing_key(a.keygen, keys); !s) return fail(s);
    fmt::print("wrote {0}.key (secret: keep it private) and {0}.pub (put it in the nodes' --trust-keys directory); "
               "key {1}\n",
               a.keygen, key_fingerprint(keys.public_key));
    return 0;
  }
  if (a.files.empty()) return fail(make_error(errc::invalid_argument, "no FILE given (ferry sign --help)"));
  if (a.check) {
    if (a.trust_keys.empty()) return fail(make_error(errc::invalid_argument, "--check needs --trust-keys DIR"));
    auto trusted = read_trusted_keys(a.trust_keys);
    if (!trusted) return fail(trusted.error());
    int rc = 0;
    for (const auto& f : a.files)
      if (auto s = a.ifunc ? sign_ifunc(f, nullptr, &*trusted) : sign_file(f, nullptr, &*trusted); !s) rc = 1;
    return rc;
  }
  if (a.key.empty()) return fail(make_error(errc::invalid_argument, "give --key NAME.key, --check or --keygen NAME"));
  auto key = read_secret_key(a.key);
  if (!key) return fail(key.error());
  for (const auto& f : a.files)
    if (auto s = a.ifunc ? sign_ifunc(f, &*key, nullptr) : sign_file(f, &*key, nullptr); !s) return fail(s);
  return 0;
}

}  // namespace

void add_sign_command(CLI::App& app) {
  auto a = std::make_shared<sign_args>();
  auto* cmd = app.add_subcommand("sign", "Sign the code objects of a program, so nodes with --trust-keys run them");
  cmd->footer(
      "  ferry sign --keygen NAME               write a new key pair: NAME.key (secret) and NAME.pub\n"
      "  ferry sign --key NAME.key FILE...      sign every code object in each FILE, in place\n"
      "  ferry sign --check --trust-keys DIR FILE...\n"
      "                                         would nodes trusting DIR's .pub keys run FILE's code?\n"
      "  ferry sign --ifunc [--key NAME.key | --check --trust-keys DIR] LIBDIR/IFUNC...\n"
      "                                         the same for ifunc libraries (LIBDIR/IFUNC.<triple>.bc):\n"
      "                                         signing writes LIBDIR/IFUNC.sig (docs/ifunc.md)\n"
      "FILE is a program, shared library or object file built with ferry_add_mobile() (its ferry_code\n"
      "section), or a code-section side file. Signing fills each code object's signature slot: the file\n"
      "keeps its size and layout. Sign again after every build. Nodes started with --trust-keys DIR run\n"
      "only code signed by a key in DIR (docs/security.md).");
  cmd->add_option("--keygen", a->keygen, "Generate a key pair NAME.key / NAME.pub (never overwrites)");
  cmd->add_option("-k,--key", a->key, "Secret key file to sign with (NAME.key)");
  cmd->add_flag("--check", a->check, "Verify instead of signing: exit 1 if any code object would be refused");
  cmd->add_option("--trust-keys", a->trust_keys, "With --check: the directory of trusted .pub keys");
  cmd->add_flag("--ifunc", a->ifunc, "Each FILE is an ifunc library LIBDIR/IFUNC (its IFUNC.<triple>.bc files)");
  cmd->add_option("FILE", a->files, "Programs, libraries or side files to sign or check");
  cmd->callback([a] { set_exit_code(run_sign(*a)); });
}

}  // namespace ferry::cli
