#include "allow_list.hpp"

#include <algorithm>
#include <array>

namespace ferry::plugin {
namespace {

// Sorted (binary search). Keep in sync with docs/plugin.md.
constexpr std::array<std::string_view, 83> kAllowed = {
    "acos", "acosf", "asin", "asinf", "atan", "atan2", "atan2f",
    "atanf", "cbrt", "cbrtf", "ceil", "ceilf", "copysign", "copysignf",
    "cos", "cosf", "cosh", "coshf", "exp", "exp2", "exp2f",
    "expf", "fabs", "fabsf", "ferry_fetch", "ferry_forward", "ferry_invoke", "ferry_local",
    "ferry_make_ptr", "ferry_migrate", "ferry_node_cpu", "ferry_node_id", "ferry_node_kind", "ferry_node_triple", "ferry_read", "ferry_resolve", "ferry_view",
    "floor", "floorf", "fma", "fmaf", "fmax", "fmaxf", "fmin",
    "fminf", "fmod", "fmodf", "hypot", "hypotf", "llround", "log",
    "log10", "log10f", "log2", "log2f", "logf", "lround", "memchr",
    "memcmp", "memcpy", "memmove", "memset", "pow", "powf", "round",
    "roundf", "sin", "sinf", "sinh", "sinhf", "sqrt", "sqrtf",
    "strchr", "strcmp", "strlen", "strncmp", "strnlen", "tan", "tanf",
    "tanh", "tanhf", "trunc", "truncf",
};

}  // namespace

static_assert(std::is_sorted(kAllowed.begin(), kAllowed.end()), "kAllowed must stay sorted");

bool is_allowed_external(std::string_view symbol) {
  return std::binary_search(kAllowed.begin(), kAllowed.end(), symbol);
}

}  // namespace ferry::plugin
