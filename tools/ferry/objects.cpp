// `ferry objects`: inspect and edit a persistent object store directory.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <fmt/format.h>

#include <ferry/store.hpp>

#include "commands.hpp"

namespace ferry::cli {
namespace {

int g_exit = 0;

// Report an error the way every subcommand does, and fail the command.
void fail(const status& s) {
  fmt::print(stderr, "ferry: {}\n", s.describe());
  set_exit_code(s.code() == errc::not_found ? 2 : 1);
}

std::unique_ptr<store> open_or_fail(const std::string& dir) {
  auto st = store::open_directory(dir);
  if (!st) {
    fail(st.error());
    return nullptr;
  }
  return std::move(*st);
}

}  // namespace

int exit_code() { return g_exit; }
void set_exit_code(int code) { g_exit = code; }

void add_objects_command(CLI::App& app) {
  auto* objects = app.add_subcommand("objects", "List, read, write and remove objects in a store directory");
  objects->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  objects->add_option("-s,--store", *dir, "Store directory (as used by `ferry node --store`)")
      ->required()
      ->envname("FERRY_STORE");

  auto* ls = objects->add_subcommand("ls", "List objects: id, data bytes, FOT entries; damaged ones last");
  ls->callback([dir] {
    auto st = open_or_fail(*dir);
    if (!st) return;
    for (const auto& id : st->list()) {
      auto info = st->stat(id);
      if (info) fmt::print("{}  {:>12}  fot {}\n", id.to_string(), info->data_size, info->fot_count);
    }
    for (const auto& [id, why] : st->damaged()) fmt::print("{}  DAMAGED: {}\n", id.to_string(), why.describe());
    if (!st->damaged().empty()) set_exit_code(3);
  });

  auto* get = objects->add_subcommand("get", "Write an object's data (or a range of it) to stdout or a file");
  auto gid = std::make_shared<std::string>();
  auto goff = std::make_shared<std::uint64_t>(0);
  auto glen = std::make_shared<std::int64_t>(-1);
  auto gout = std::make_shared<std::string>();
  get->add_option("ID", *gid, "Object id (32 hex digits)")->required();
  get->add_option("--offset", *goff, "First byte to read");
  get->add_option("--length", *glen, "Bytes to read (default: to the end)");
  get->add_option("-o,--output", *gout, "Write to this file instead of stdout");
  get->callback([=] {
    auto id = object_id::parse(*gid);
    if (!id) return fail(id.error());
    auto st = open_or_fail(*dir);
    if (!st) return;
    auto info = st->stat(*id);
    if (!info) return fail(info.error());
    const std::uint64_t len = *glen >= 0 ? static_cast<std::uint64_t>(*glen)
                              : info->data_size >= *goff ? info->data_size - *goff
                                                         : 0;
    auto bytes = st->read(*id, *goff, len);
    if (!bytes) return fail(bytes.error());
    std::FILE* out = gout->empty() ? stdout : std::fopen(gout->c_str(), "wb");
    if (!out) return fail(make_error(errc::io_error, "cannot open " + *gout));
    std::fwrite(bytes->data(), 1, bytes->size(), out);
    if (out != stdout) std::fclose(out);
  });

  auto* put = objects->add_subcommand("put", "Create an object holding a file's bytes; prints its id");
  auto pfile = std::make_shared<std::string>();
  auto pid = std::make_shared<std::string>();
  put->add_option("FILE", *pfile, "File whose bytes become the object's data ('-' for stdin)")->required();
  put->add_option("--id", *pid, "Use this id instead of a random one");
  put->callback([=] {
    std::string data;
    if (*pfile == "-") {
      data.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(*pfile, std::ios::binary);
      if (!in) return fail(make_error(errc::io_error, "cannot read " + *pfile));
      data.assign(std::istreambuf_iterator<char>(in), {});
    }
    object_id id = object_id::random();
    if (!pid->empty()) {
      auto parsed = object_id::parse(*pid);
      if (!parsed) return fail(parsed.error());
      id = *parsed;
    }
    auto st = open_or_fail(*dir);
    if (!st) return;
    auto info = st->create(id, data.size());
    if (!info) return fail(info.error());
    if (auto w = st->write(id, 0, std::as_bytes(std::span(data))); !w) return fail(w.error());
    fmt::print("{}\n", id.to_string());
  });

  auto* rm = objects->add_subcommand("rm", "Remove an object (durable when the command returns)");
  auto rid = std::make_shared<std::string>();
  rm->add_option("ID", *rid, "Object id")->required();
  rm->callback([=] {
    auto id = object_id::parse(*rid);
    if (!id) return fail(id.error());
    auto st = open_or_fail(*dir);
    if (!st) return;
    if (auto r = st->remove(*id); !r) fail(r.error());
  });
}

}  // namespace ferry::cli
