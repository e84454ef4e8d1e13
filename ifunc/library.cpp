#include "ifunc/library.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/TargetParser/Triple.h>

namespace ferry::ifunc {
namespace {

// The variant's description, read from the bitcode itself: a file named for
// one triple but built for another still runs only where it can.
result<code_variant> variant_of(std::string_view label, std::span<const std::uint8_t> bytes) {
  const llvm::MemoryBufferRef ref(llvm::StringRef(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                  llvm::StringRef(label.data(), label.size()));
  auto triple = llvm::getBitcodeTargetTriple(ref);
  if (!triple)
    return make_error(errc::bad_format,
                      fmt::format("{} is not LLVM bitcode: {}", label, llvm::toString(triple.takeError())));
  auto producer = llvm::getBitcodeProducerString(ref);
  if (!producer) return make_error(errc::bad_format, fmt::format("{}: {}", label, llvm::toString(producer.takeError())));
  code_variant v;
  v.triple = *triple;
  // Generic CPUs: ifunc libraries are built without -march (the prototype's rules).
  v.cpu = llvm::Triple(*triple).getArch() == llvm::Triple::x86_64 ? "x86-64" : "generic";
  v.llvm_version = llvm::StringRef(*producer).starts_with("LLVM") ? producer->substr(4) : *producer;
  v.bitcode.assign(bytes.begin(), bytes.end());
  return v;
}

result<wire::ifunc_code> assemble(std::string_view name, bool pure, std::vector<code_variant> variants,
                                  std::vector<std::string> deps) {
  if (name.empty() || name.find('/') != std::string_view::npos)
    return make_error(errc::invalid_argument, fmt::format("'{}' is not an ifunc name", name));
  if (variants.empty()) return make_error(errc::not_found, fmt::format("ifunc {}: no bitcode", name));
  const ifunc_symbols s = symbols_of(name);
  wire::ifunc_code c;
  c.name = std::string(name);
  c.pure = pure;
  c.deps = std::move(deps);
  c.code.name = c.name;
  c.code.symbol = s.main;
  c.code.entry_symbol = s.main;
  c.code.result_type = "void";
  c.code.references = {s.payload_bound, s.payload_init};
  c.code.variants = std::move(variants);
  c.code.seal();
  return c;
}

result<std::vector<std::uint8_t>> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(errc::io_error, fmt::format("cannot read {}", p.string()));
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

ifunc_symbols symbols_of(std::string_view name) {
  return {fmt::format("{}_main", name), fmt::format("{}_payload_bound", name), fmt::format("{}_payload_init", name)};
}

result<wire::ifunc_code> read_library(const std::filesystem::path& dir, std::string_view name, bool pure) {
  if (name.empty() || name.find('/') != std::string_view::npos)
    return make_error(errc::invalid_argument, fmt::format("'{}' is not an ifunc name", name));
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  const std::string prefix = fmt::format("{}.", name);
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    // NAME.<triple>.bc with a non-empty triple
    if (e.is_regular_file() && f.size() > prefix.size() + 3 && f.starts_with(prefix) && f.ends_with(".bc"))
      files.push_back(e.path());
  }
  if (ec) return make_error(errc::io_error, fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  if (files.empty())
    return make_error(errc::not_found, fmt::format("no {}.<triple>.bc in {}", name, dir.string()));
  std::sort(files.begin(), files.end());
  std::vector<code_variant> variants;
  for (const auto& f : files) {
    auto bytes = read_file(f);
    if (!bytes) return bytes.error();
    auto v = variant_of(f.string(), *bytes);
    if (!v) return v.error();
    variants.push_back(std::move(*v));
  }
  std::vector<std::string> deps;
  if (std::ifstream in(dir / fmt::format("{}.deps", name)); in)
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) deps.push_back(line);
  auto c = assemble(name, pure, std::move(variants), std::move(deps));
  if (!c) return c;
  const auto sig = signature_file(dir, name);
  if (!std::filesystem::exists(sig, ec)) return c;
  auto bytes = read_file(sig);
  if (!bytes) return bytes.error();
  code_signature& slot = c->code.signature;
  if (bytes->size() != slot.signer.size() + slot.signature.size())
    return make_error(errc::bad_format, fmt::format("{} is not an ifunc library signature ({} bytes, not {})",
                                                    sig.string(), bytes->size(),
                                                    slot.signer.size() + slot.signature.size()));
  std::copy_n(bytes->begin(), slot.signer.size(), slot.signer.begin());
  std::copy_n(bytes->begin() + slot.signer.size(), slot.signature.size(), slot.signature.begin());
  return c;
}

std::filesystem::path signature_file(const std::filesystem::path& dir, std::string_view name) {
  return dir / fmt::format("{}.sig", name);
}

result<wire::ifunc_code> sign_library(const std::filesystem::path& dir, std::string_view name,
                                      const signing_secret_key& key) {
  auto c = read_library(dir, name, false);
  if (!c) return c;
  c->code.sign(key);
  const auto& slot = c->code.signature;
  const auto sig = signature_file(dir, name);
  std::ofstream out(sig, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(slot.signer.data()), slot.signer.size());
  out.write(reinterpret_cast<const char*>(slot.signature.data()), slot.signature.size());
  if (!out.flush()) return make_error(errc::io_error, fmt::format("cannot write {}", sig.string()));
  return c;
}

result<wire::ifunc_code> library_from_memory(std::string_view name, bool pure, std::span<const bitcode_buffer> bitcode,
                                             std::vector<std::string> deps) {
  std::vector<code_variant> variants;
  for (const auto& b : bitcode) {
    auto v = variant_of(fmt::format("{} bitcode for {}", name, b.triple), b.bytes);
    if (!v) return v.error();
    variants.push_back(std::move(*v));
  }
  return assemble(name, pure, std::move(variants), std::move(deps));
}

object_id key_of(const wire::ifunc_code& code) {
  const object_id id = code.code.id();
  std::string identity = fmt::format("ferry-ifunc-1|{}|{}", id.to_string(), code.pure ? 1 : 0);
  for (const auto& d : code.deps) identity += "|" + d;
  return object_id::of_content(identity.data(), identity.size());
}

}  // namespace ferry::ifunc
