// The code objects this executable carries (it is built with
// ferry_add_mobile from pass/): registry lookups by address, symbol and id;
// manifests that agree with the host's argument layout; every variant's
// bitcode parses, verifies and defines the uniform entry.
#include <set>
#include <string>

#include <doctest/doctest.h>

#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/MemoryBuffer.h>

#include <ferry/ferry.hpp>

#include "pass/graph.hpp"
#include "pass/vector.h"
#include "test_util.hpp"

namespace {

using ferry::code_object;
using ferry::code_registry;

const code_object& object_of(const void* fn) {
  auto co = code_registry::global().find(fn);
  REQUIRE_MESSAGE(co.ok(), co.error().describe());
  return **co;
}

template <class R, class... P>
void check_layout(R (*fn)(ferry::context&, P...)) {
  const auto& co = object_of(reinterpret_cast<const void*>(fn));
  using layout = ferry::detail::arg_layout<P...>;
  CHECK(co.args_size == layout::size());
  REQUIRE(co.params.size() == sizeof...(P));
  for (std::size_t i = 0; i < sizeof...(P); ++i) {
    CHECK(co.params[i].size == layout::sizes[i]);
    CHECK(co.params[i].align == layout::aligns[i]);
  }
  if constexpr (std::is_void_v<R>) CHECK(co.result_size == 0);
  else CHECK(co.result_size == sizeof(R));
}

}  // namespace

TEST_CASE("every mobile function is registered under its address, symbol and id") {
  const void* fns[] = {reinterpret_cast<const void*>(&graph::chase),
                       reinterpret_cast<const void*>(&graph::heaviest),
                       reinterpret_cast<const void*>(&graph::scale<std::int32_t>),
                       reinterpret_cast<const void*>(&graph::scale<double>),
                       reinterpret_cast<const void*>(&graph::twice_chase),
                       reinterpret_cast<const void*>(&graph::hop),
                       reinterpret_cast<const void*>(&vec_norm),
                       reinterpret_cast<const void*>(&vec_sum),
                       reinterpret_cast<const void*>(&vec_clear),
                       vec_weighted_address()};
  std::set<std::string> symbols;
  for (const void* fn : fns) {
    const auto& co = object_of(fn);
    symbols.insert(co.symbol);
    CHECK(REQUIRE_OK(code_registry::global().find_symbol(co.symbol)) == &co);
    CHECK(REQUIRE_OK(code_registry::global().find_id(co.id())) == &co);
    CHECK(co.entry_symbol == "__ferry_entry." + co.symbol);
  }
  CHECK(symbols.size() == std::size(fns));
  CHECK(code_registry::global().list().size() == std::size(fns));
  CHECK(code_registry::global().load_status().ok());
}

TEST_CASE("names are readable, symbols mangled, and template instantiations are distinct") {
  CHECK(object_of(reinterpret_cast<const void*>(&graph::chase)).name == "graph::chase");
  CHECK(object_of(reinterpret_cast<const void*>(&graph::chase)).symbol ==
        "_ZN5graph5chaseERN5ferry7contextENS0_3refImEEmj");
  CHECK(object_of(reinterpret_cast<const void*>(&graph::scale<std::int32_t>)).name == "graph::scale<int>");
  CHECK(object_of(reinterpret_cast<const void*>(&graph::scale<double>)).name == "graph::scale<double>");
  CHECK(object_of(reinterpret_cast<const void*>(&vec_sum)).symbol == "vec_sum");
  CHECK(object_of(vec_weighted_address()).symbol == "vec_weighted");
}

TEST_CASE("manifests agree with the host's argument layout") {
  check_layout(&graph::chase);
  check_layout(&graph::heaviest);
  check_layout(&graph::scale<std::int32_t>);
  check_layout(&graph::scale<double>);
  check_layout(&graph::hop);
  const auto& sum = object_of(reinterpret_cast<const void*>(&vec_sum));
  REQUIRE(sum.params.size() == 2);
  CHECK(sum.params[0].what == ferry::code_param::kind::ref);
  CHECK(sum.params[1].what == ferry::code_param::kind::value);
  CHECK(sum.args_size == 28);
  CHECK(object_of(reinterpret_cast<const void*>(&vec_clear)).result_type == "void");
  const auto& chase = object_of(reinterpret_cast<const void*>(&graph::chase));
  CHECK(chase.params[0].type == "ferry::ref<unsigned long>");
  CHECK(chase.params[0].what == ferry::code_param::kind::ref);
  CHECK(chase.signature_hash == ferry::signature_hash_of(chase.result_type, chase.params));
}

TEST_CASE("references list the other mobile functions whose address the code takes") {
  const auto& hop = object_of(reinterpret_cast<const void*>(&graph::hop));
  const auto& chase = object_of(reinterpret_cast<const void*>(&graph::chase));
  CHECK(hop.references == std::vector<std::string>{chase.symbol});
  CHECK(chase.references.empty());  // its own address is not a reference
}

TEST_CASE("every variant's bitcode parses, verifies and defines the entry") {
  for (const code_object* co : code_registry::global().list()) {
    std::set<std::string> triples;
    for (const auto& v : co->variants) {
      CAPTURE(co->name);
      CAPTURE(v.triple);
      triples.insert(v.triple);
      CHECK(!v.cpu.empty());
      CHECK(v.llvm_version.starts_with("19."));
      llvm::LLVMContext ctx;
      const llvm::StringRef bytes(reinterpret_cast<const char*>(v.bitcode.data()), v.bitcode.size());
      auto m = llvm::parseBitcodeFile(llvm::MemoryBufferRef(bytes, co->symbol), ctx);
      REQUIRE_MESSAGE(static_cast<bool>(m), llvm::toString(m.takeError()));
      std::string errors;
      llvm::raw_string_ostream os(errors);
      CHECK_MESSAGE(!llvm::verifyModule(**m, &os), errors);
      CHECK((*m)->getTargetTriple() == v.triple);
      const llvm::Function* entry = (*m)->getFunction(co->entry_symbol);
      REQUIRE(entry);
      CHECK(!entry->isDeclaration());
      CHECK(entry->arg_size() == 3);
      CHECK(entry->getReturnType()->isIntegerTy(32));
      // Nothing but the entry, mobile functions and allowed runtime/libc calls is visible.
      for (const llvm::Function& f : **m)
        if (!f.hasLocalLinkage() && !f.isIntrinsic() && &f != entry && !f.isDeclaration())
          CHECK(f.hasWeakODRLinkage());
    }
    CHECK(triples == std::set<std::string>{"aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"});
  }
}

TEST_CASE("unknown functions and corrupt sections are typed errors") {
  CHECK_ERRC(code_registry::global().find(reinterpret_cast<const void*>(&vec_weighted_address)), ferry::errc::unknown_code);
  CHECK(code_registry::global()
            .find(reinterpret_cast<const void*>(&vec_weighted_address))
            .error()
            .message()
            .find("ferry_add_mobile") != std::string::npos);
  CHECK_ERRC(code_registry::global().find_symbol("no_such_symbol"), ferry::errc::unknown_code);

  code_registry reg;
  const code_object& chase = object_of(reinterpret_cast<const void*>(&graph::chase));
  CHECK(reg.add(chase).ok());
  CHECK(reg.add(chase).ok());  // the same object again: no-op
  code_object other = chase;
  other.variants.pop_back();
  CHECK(reg.add(other).code() == ferry::errc::already_exists);
  auto section = ferry::encode_code_section(std::vector<code_object>{chase});
  CHECK(REQUIRE_OK(ferry::decode_code_section(section)).size() == 1);
  auto truncated = section;
  truncated.resize(truncated.size() - 1);
  CHECK_ERRC(ferry::decode_code_section(truncated), ferry::errc::bad_format);
  auto flipped = section;
  flipped[flipped.size() - 100 - 1] ^= 0xff;  // last bitcode byte (before the 100-byte signature slot): caught by the hash
  CHECK_ERRC(ferry::decode_code_section(flipped), ferry::errc::corrupt);
}

// One damaged code object makes only its own function unavailable, with the
// reason; the other functions of the same section stay callable. (It used
// to make every function of the program unknown_code.)
TEST_CASE("a damaged code object in a section spoils only its own function") {
  const code_object& chase = object_of(reinterpret_cast<const void*>(&graph::chase));
  const code_object& heaviest = object_of(reinterpret_cast<const void*>(&graph::heaviest));
  const code_object& norm = object_of(reinterpret_cast<const void*>(&vec_norm));
  const std::vector<code_object> objects{chase, heaviest, norm};
  const auto section = ferry::encode_code_section(objects);
  // Record i starts at the sum of the earlier records (u64 length + body).
  std::vector<std::size_t> starts;
  for (std::size_t at = 0, i = 0; i < objects.size(); ++i) {
    starts.push_back(at);
    at += 8 + objects[i].encode().size();
  }
  const auto register_all = [&](code_registry& reg, std::span<const std::uint8_t> bytes) {
    const auto s = reg.add_section(bytes);
    reg.map_address(reinterpret_cast<const void*>(&graph::chase), chase.symbol);
    reg.map_address(reinterpret_cast<const void*>(&graph::heaviest), heaviest.symbol);
    reg.map_address(reinterpret_cast<const void*>(&vec_norm), norm.symbol);
    return s;
  };
  const auto works = [](const code_registry& reg, const void* fn, const code_object& co) {
    auto found = reg.find(fn);
    REQUIRE_MESSAGE(found.ok(), found.error().describe());
    CHECK((*found)->id() == co.id());
  };

  SUBCASE("bitcode that does not match its hash: corrupt, naming the function") {
    auto bytes = section;
    bytes[starts[2] - 100 - 1] ^= 0xff;  // the middle record's last bitcode byte (before its 100-byte signature slot)
    code_registry reg;
    CHECK(register_all(reg, bytes).code() == ferry::errc::corrupt);
    works(reg, reinterpret_cast<const void*>(&graph::chase), chase);
    works(reg, reinterpret_cast<const void*>(&vec_norm), norm);
    for (auto r : {reg.find(reinterpret_cast<const void*>(&graph::heaviest)), reg.find_symbol(heaviest.symbol)}) {
      REQUIRE_FALSE(r.ok());
      CHECK(r.code() == ferry::errc::corrupt);
      CHECK(r.error().message().find("graph::heaviest") != std::string::npos);
      CHECK(r.error().message().find("damaged") != std::string::npos);
      CHECK(r.error().message().find("does not match its hash") != std::string::npos);
    }
  }
  SUBCASE("a manifest that does not parse: bad_format, the others still work") {
    auto bytes = section;
    // The middle record's parameter count (after the manifest length, magic,
    // version, flags and three strings) claims far too many parameters.
    const auto body = starts[1] + 8;
    const std::size_t nparams_at = body + 4 + 4 + 2 + 2 + (4 + heaviest.name.size()) + (4 + heaviest.symbol.size()) +
                                   (4 + heaviest.entry_symbol.size());
    bytes[nparams_at + 3] = 0x7f;
    code_registry reg;
    CHECK(register_all(reg, bytes).code() == ferry::errc::bad_format);
    works(reg, reinterpret_cast<const void*>(&graph::chase), chase);
    works(reg, reinterpret_cast<const void*>(&vec_norm), norm);
    auto r = reg.find(reinterpret_cast<const void*>(&graph::heaviest));
    CHECK(r.code() == ferry::errc::bad_format);
    CHECK(r.error().message().find("too many parameters") != std::string::npos);
  }
  SUBCASE("a record whose own name is unreadable: unknown_code with the load error, the others still work") {
    auto bytes = section;
    bytes[starts[1] + 8 + 4] ^= 0xff;  // the middle record's magic
    code_registry reg;
    CHECK(register_all(reg, bytes).code() == ferry::errc::bad_format);
    works(reg, reinterpret_cast<const void*>(&graph::chase), chase);
    works(reg, reinterpret_cast<const void*>(&vec_norm), norm);
    CHECK(reg.find(reinterpret_cast<const void*>(&graph::heaviest)).code() == ferry::errc::unknown_code);
  }
  SUBCASE("a section cut short: the records before the cut work") {
    auto bytes = section;
    bytes.resize(bytes.size() - 10);
    code_registry reg;
    CHECK(register_all(reg, bytes).code() == ferry::errc::bad_format);
    works(reg, reinterpret_cast<const void*>(&graph::chase), chase);
    works(reg, reinterpret_cast<const void*>(&graph::heaviest), heaviest);
    auto r = reg.find(reinterpret_cast<const void*>(&vec_norm));
    CHECK(r.code() == ferry::errc::bad_format);
    CHECK(r.error().message().find("vec_norm") != std::string::npos);
  }
}

TEST_CASE("a registry's remembered answer to find() follows new registrations and mappings") {
  // find() answers a thread's repeated question without the lock while
  // nothing was registered (core/last_answer.hpp): every change must show.
  const code_object& chase = object_of(reinterpret_cast<const void*>(&graph::chase));
  const code_object& norm = object_of(reinterpret_cast<const void*>(&vec_norm));
  const auto* fn = reinterpret_cast<const void*>(&graph::chase);
  code_registry reg;
  CHECK(reg.find(fn).code() == ferry::errc::unknown_code);
  reg.map_address(fn, chase.symbol);
  CHECK(reg.find(fn).code() == ferry::errc::unknown_code);  // mapped, but no object yet
  REQUIRE(reg.add(chase).ok());
  REQUIRE(reg.find(fn).ok());
  CHECK((*reg.find(fn))->id() == chase.id());
  CHECK(reg.id_of(**reg.find(fn)) == chase.id());
  REQUIRE(reg.add(norm).ok());
  reg.map_address(fn, norm.symbol);  // the same address now names another function
  REQUIRE(reg.find(fn).ok());
  CHECK((*reg.find(fn))->id() == norm.id());
  CHECK(reg.id_of(**reg.find(fn)) == norm.id());
  // Another registry that never heard of the address does not answer for it.
  code_registry other;
  CHECK(other.find(fn).code() == ferry::errc::unknown_code);
  CHECK(code_registry::global().find(fn).ok());
  CHECK((*code_registry::global().find(fn))->id() == chase.id());
}
