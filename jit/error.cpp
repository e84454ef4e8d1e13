#include "error.hpp"

#include <fmt/format.h>

namespace ferry::jitd {

char jit_error::ID = 0;

status to_status(llvm::Error e, errc other, std::string_view context) {
  status out;
  llvm::handleAllErrors(
      std::move(e), [&](const jit_error& j) { out = make_error(j.code(), j.text()); },
      [&](const llvm::ErrorInfoBase& b) { out = make_error(other, fmt::format("{}: {}", context, b.message())); });
  return out;
}

llvm::Error from_status(const status& s) {
  if (s.ok()) return llvm::Error::success();
  return fail(s.code(), s.message());
}

}  // namespace ferry::jitd
