// ferry-fuzz-seeds DIR: write the seed corpora of the fuzz targets
// (DIR/<target>/<name>) from ferry's own encoders, so seeds follow the
// formats. The corpora in tests/fuzz/corpus were made with:
//   build/bin/ferry-fuzz-seeds tests/fuzz/corpus
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/code_registry.hpp>
#include <ferry/code_signing.hpp>

#include "wire/bootstrap.hpp"
#include "ifunc/library.hpp"
#include "wire/frames.hpp"
#include "wire/ifunc_frame.hpp"
#include "wire/object_layout.hpp"

namespace {

namespace fs = std::filesystem;
using namespace ferry;

void put(const fs::path& dir, const std::string& name, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

code_object sample(bool sign) {
  code_object co;
  co.name = "seed::walk";
  co.symbol = "_Z4walkRN5ferry7contextENS_3refImEEm";
  co.entry_symbol = "__ferry_entry._Z4walkRN5ferry7contextENS_3refImEEm";
  co.params = {{code_param::kind::ref, 24, 8, "ferry::ref<unsigned long>"}, {code_param::kind::value, 8, 8, "unsigned long"}};
  co.args_size = 32;
  co.result_size = 8;
  co.result_type = "unsigned long";
  co.signature_hash = signature_hash_of(co.result_type, co.params);
  co.references = {"_Z4stepRN5ferry7contextE"};
  co.variants.push_back({"x86_64-unknown-linux-gnu", "x86-64", "+sse2", "19.1.7", {}, {'B', 'C', 0xc0, 0xde, 1, 2, 3, 4}});
  co.variants.push_back({"aarch64-unknown-linux-gnu", "generic", "+neon", "19.1.7", {}, {'B', 'C', 0xc0, 0xde, 9}});
  co.seal();
  if (sign) co.sign(generate_signing_key().secret_key);
  return co;
}

// An ifunc message image (wire/ifunc_frame.hpp): header, a payload of
// `payload_size` counting bytes, the code section if `code` is not empty,
// trailer.
std::vector<std::uint8_t> ifunc_message(const object_id& key, std::size_t payload_size,
                                        const std::vector<std::uint8_t>& code) {
  wire::ifunc_header h;
  h.key = key;
  h.payload_size = payload_size;
  h.code_attached = !code.empty();
  h.code_size = code.size();
  h.nonce = 0x5eed5eed5eed5eedull;
  std::vector<std::uint64_t> image(h.frame_size() / 8, 0);  // 8-aligned, as the trailer wants
  auto* bytes = reinterpret_cast<std::uint8_t*>(image.data());
  wire::encode_ifunc_header(h, std::span<std::uint8_t, wire::kIfuncHeaderSize>(bytes, wire::kIfuncHeaderSize));
  for (std::size_t i = 0; i < payload_size; ++i) bytes[wire::kIfuncHeaderSize + i] = static_cast<std::uint8_t>(i);
  std::copy(code.begin(), code.end(), bytes + wire::kIfuncHeaderSize + payload_size);
  wire::write_ifunc_trailer(bytes, h);
  return {bytes, bytes + h.frame_size()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fputs("usage: ferry-fuzz-seeds DIR\n", stderr);
    return 2;
  }
  const fs::path out = argv[1];
  using wire::frame;
  using wire::frame_type;
  const object_id id{0x0123456789abcdefull, 0xfedcba9876543210ull};
  const ref<void> at{id, 16};
  wire::invoke_body call;
  call.code = sample(false).id();
  call.symbol = sample(false).symbol;
  call.origin = 3;
  call.origin_call = 77;
  call.deadline_us = 1'800'000'000'000'000;
  call.target = at;
  call.args.assign(32, 7);
  auto pushed = call;
  pushed.code_blob = sample(true).encode();
  const std::vector<std::pair<std::string, frame>> frames{
      {"hello", {frame_type::hello, 1, 0, wire::hello_body{1, 0, "x86_64-unknown-linux-gnu", "znver3", {1, 2, 3, 4}}}},
      {"invoke", {frame_type::invoke, 2, 5, call}},
      {"invoke_pushed", {frame_type::invoke, 2, 6, pushed}},
      {"reply", {frame_type::reply, 1, 5, wire::reply_body{{1, 0, 0, 0, 0, 0, 0, 0}}}},
      {"error", {frame_type::error, 1, 5, wire::error_body{errc::not_local, "object is elsewhere"}}},
      {"code_request", {frame_type::code_request, 1, 9, wire::code_request_body{call.code, call.symbol}}},
      {"code_response", {frame_type::code_response, 0, 9, wire::code_response_body{sample(false).encode()}}},
      {"object_create", {frame_type::object_create, 2, 10, wire::object_create_body{id, 4096}}},
      {"object_put", {frame_type::object_put, 2, 11, wire::object_put_body{at, {1, 2, 3}}}},
      {"object_get", {frame_type::object_get, 2, 12, wire::object_get_body{at, 64}}},
      {"object_remove", {frame_type::object_remove, 2, 13, wire::object_remove_body{id}}},
      {"object_data", {frame_type::object_data, 1, 12, wire::object_data_body{{9, 8, 7}}}},
      {"ack", {frame_type::ack, 1, 13, wire::empty_body{}}},
      {"heartbeat", {frame_type::heartbeat, 1, 0, wire::load_body{3, 2, 2, 150, 870, 41, 5, 65536}}},
      {"dir_register", {frame_type::dir_register, 1, 0, wire::dir_register_body{id, 2, 3}}},
      {"object_commit", {frame_type::object_commit, 0, 14, wire::dir_register_body{id, 1, 4}}},
      {"object_image", {frame_type::object_image, 0, 15, wire::object_image_body{id, 3 << 20, 1 << 20, {4, 5, 6}}}},
      {"ifunc", {frame_type::ifunc, 1, 0, wire::ifunc_body{1, 7, 0, at, errc::ok, "", ifunc_message(id, 24, {})}}},
  };
  for (const auto& [name, f] : frames) put(out / "frames", name, wire::encode(f));

  put(out / "code_object", "unsigned", sample(false).encode());
  put(out / "code_object", "signed", sample(true).encode());
  const std::vector<code_object> two{sample(false), sample(true)};
  put(out / "code_object", "section", encode_code_section(two));

  // ifunc messages: a short one (the ifunc is resident at the target) and a
  // full one with its code section, signed and not.
  for (const bool sign : {false, true}) {
    wire::ifunc_code c;
    c.name = "seed";
    c.deps = {"libm.so.6"};
    c.code = sample(sign);
    put(out / "ifunc_message", sign ? "full_signed" : "full", ifunc_message(ifunc::key_of(c), 40, wire::encode_ifunc_code(c)));
  }
  put(out / "ifunc_message", "short", ifunc_message(id, 40, {}));

  put(out / "bootstrap", "request", wire::encode(wire::bootstrap_request{wire::bootstrap_ask::address, 4}));
  put(out / "bootstrap", "answer",
      wire::encode(wire::bootstrap_answer{wire::bootstrap_ask::address, errc::ok, 4, 2, {1, 2, 3, 4, 5, 6}, ""}));
  put(out / "bootstrap", "refusal",
      wire::encode(wire::bootstrap_answer{wire::bootstrap_ask::member_index, errc::invalid_argument, 4, wire::kNoNode,
                                          {}, "host lists differ"}));

  for (const auto& [fot, data] : {std::pair<std::uint32_t, std::uint64_t>{0, 64}, {4, 256}}) {
    std::vector<std::uint8_t> image(layout::image_size_for(fot, data));
    const std::span<std::byte> view(reinterpret_cast<std::byte*>(image.data()), image.size());
    layout::init(view, id, fot, data);
    for (std::size_t i = layout::data_offset_for(fot); i < image.size(); ++i) image[i] = static_cast<std::uint8_t>(i);
    layout::seal(view);
    put(out / "object_image", "fot" + std::to_string(fot), image);
  }
  return 0;
}
