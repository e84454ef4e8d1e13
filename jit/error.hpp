// jit/error.hpp — jit/'s error currency: llvm::Error carrying a ferry::errc,
// translated to ferry::status at the public edge (to_status).
#pragma once

#include <string>

#include <llvm/Support/Error.h>

#include <ferry/status.hpp>

namespace ferry::jitd {

/// An llvm::Error payload that knows its ferry error kind.
class jit_error : public llvm::ErrorInfo<jit_error> {
 public:
  static char ID;
  jit_error(errc code, std::string message) : code_(code), message_(std::move(message)) {}
  void log(llvm::raw_ostream& os) const override { os << message_; }
  std::error_code convertToErrorCode() const override { return llvm::inconvertibleErrorCode(); }
  [[nodiscard]] errc code() const { return code_; }
  [[nodiscard]] const std::string& text() const { return message_; }

 private:
  errc code_;
  std::string message_;
};

inline llvm::Error fail(errc code, std::string message) {
  return llvm::make_error<jit_error>(code, std::move(message));
}

/// Consume `e`: jit_error keeps its kind, any other LLVM error becomes
/// `other` with LLVM's message prefixed by `context`.
status to_status(llvm::Error e, errc other, std::string_view context);

/// The same for a status coming back from outside jit/.
llvm::Error from_status(const status& s);

}  // namespace ferry::jitd
