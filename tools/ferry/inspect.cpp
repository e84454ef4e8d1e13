// `ferry inspect BINARY [--json]`: the code objects an executable, shared
// library or object file carries in its `ferry_code` section.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/Error.h>

#include <ferry/code_registry.hpp>
#include <ferry/code_signing.hpp>

#include "commands.hpp"

namespace ferry::cli {
namespace {

// The code objects in `path`, or a typed error saying why there are none.
result<std::vector<code_object>> read_code_objects(const std::string& path) {
  auto file = llvm::object::ObjectFile::createObjectFile(path);
  if (!file) {
    const std::string why = llvm::toString(file.takeError());
    const bool io = why.find("No such file") != std::string::npos || why.find("directory") != std::string::npos ||
                    why.find("ermission") != std::string::npos;
    return make_error(io ? errc::io_error : errc::bad_format,
                      fmt::format("{}: {}", path, io ? why : "not an object file or executable (" + why + ")"));
  }
  const llvm::object::ObjectFile& obj = *file->getBinary();
  if (!obj.isELF()) return make_error(errc::unsupported, fmt::format("{}: not an ELF file", path));
  std::vector<code_object> all;
  bool found = false;
  for (const auto& sec : obj.sections()) {
    auto name = sec.getName();
    if (!name || std::string_view(*name) != code_section_name) continue;
    found = true;
    auto contents = sec.getContents();
    if (!contents)
      return make_error(errc::bad_format, fmt::format("{}: cannot read section {}: {}", path, code_section_name,
                                                      llvm::toString(contents.takeError())));
    auto objects = decode_code_section(
        {reinterpret_cast<const std::uint8_t*>(contents->data()), contents->size()});
    if (!objects) return make_error(objects.code(), fmt::format("{}: {}", path, objects.error().message()));
    for (auto& co : *objects) all.push_back(std::move(co));
  }
  if (!found)
    return make_error(errc::not_found, fmt::format("{}: no {} section: it carries no code objects (was it built "
                                                   "with ferry_add_mobile()?)",
                                                   path, code_section_name));
  return all;
}

nlohmann::json to_json(const std::vector<code_object>& objects) {
  auto out = nlohmann::json::array();
  for (const auto& co : objects) {
    auto variants = nlohmann::json::array();
    for (const auto& v : co.variants)
      variants.push_back(
          {{"triple", v.triple}, {"cpu", v.cpu}, {"features", v.features}, {"bitcode_bytes", v.bitcode.size()}});
    out.push_back({{"name", co.name},
                   {"symbol", co.symbol},
                   {"id", co.id().to_string()},
                   {"signer", co.signature.present() ? nlohmann::json(key_fingerprint(co.signature.signer)) : nullptr},
                   {"variants", variants}});
  }
  return out;
}

void print_table(const std::vector<code_object>& objects) {
  fmt::print("{} code object{}\n", objects.size(), objects.size() == 1 ? "" : "s");
  for (const auto& co : objects) {
    fmt::print("\n{}  {}\n  symbol  {}\n  call    {}(", co.id().to_string(), co.name, co.symbol, co.result_type);
    for (std::size_t i = 0; i < co.params.size(); ++i)
      fmt::print("{}{}", i ? ", " : "", co.params[i].type);
    fmt::print(")  args {} B, result {} B\n", co.args_size, co.result_size);
    for (const auto& r : co.references) fmt::print("  refers  {}\n", r);
    fmt::print("  signed  {}\n", co.signature.present() ? "by key " + key_fingerprint(co.signature.signer) : "no");
    for (const auto& v : co.variants)
      fmt::print("  {:<26} {:<12} {:>7} B  {}\n", v.triple, v.cpu, v.bitcode.size(),
                 v.features.empty() ? "-" : v.features);
  }
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "List the code objects a binary or object file carries");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("BINARY", *path, "Executable, shared library or object file")->required();
  cmd->add_flag("--json", *json,
                "Print a JSON list of {name, symbol, id, signer (key fingerprint or null), variants[{triple, cpu, "
                "features, bitcode_bytes}]}");
  cmd->callback([=] {
    auto objects = read_code_objects(*path);
    if (!objects) {
      fmt::print(stderr, "ferry: {}\n", objects.error().describe());
      set_exit_code(objects.code() == errc::not_found ? 2 : 1);
      return;
    }
    if (*json) fmt::print("{}\n", to_json(*objects).dump(2));
    else print_table(*objects);
  });
}

}  // namespace ferry::cli
