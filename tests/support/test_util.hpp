// Helpers shared by ferry's tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include <ferry/status.hpp>

namespace ferry::test {

/// A fresh directory under $TMPDIR, removed (with contents) on scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) FAIL("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ferry::test

/// Check that a result/status holds an error of kind `kind`.
#define CHECK_ERRC(expr, kind)                                               \
  do {                                                                       \
    const auto ferry_check_ = (expr);                                        \
    CHECK_MESSAGE(ferry_check_.code() == (kind),                             \
                  "expected " << ::ferry::to_string(kind) << ", got "        \
                              << ferry_check_.error().describe());           \
  } while (0)

/// Unwrap a result or fail the test with its error.
#define REQUIRE_OK(expr) ::ferry::test::unwrap((expr), #expr)

namespace ferry::test {
template <class T>
T unwrap(ferry::result<T> r, const char* expr) {
  REQUIRE_MESSAGE(r.ok(), expr << " failed: " << r.error().describe());
  return std::move(*r);
}
inline void unwrap(ferry::result<void> r, const char* expr) {
  REQUIRE_MESSAGE(r.ok(), expr << " failed: " << r.error().describe());
}
}  // namespace ferry::test
