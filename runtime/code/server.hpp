// ⑦ The code server: every process that holds code (a client holds the code
// objects compiled into it, a node what it was sent) answers code_request
// frames the same way: the encoded code object, or an error frame.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::code {

/// Finds an encoded code object by id, or by symbol when the id is nil.
using code_lookup = std::function<result<std::vector<std::uint8_t>>(const object_id& id, std::string_view symbol)>;

/// Answer code_request frame `f` (driving thread).
void serve_code_request(session::member& member, const wire::frame& f, const code_lookup& lookup);

}  // namespace ferry::code
