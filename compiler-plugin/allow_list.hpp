// External functions mobile code may call: the ferry runtime API of
// <ferry/ferry.h> and a small libc/libm set that is pure computation. Every
// other function must be defined in the same translation unit. The JIT's
// symbol allow-list must admit at least these (docs/plugin.md).
#pragma once

#include <string_view>

namespace ferry::plugin {

bool is_allowed_external(std::string_view symbol);

}  // namespace ferry::plugin
