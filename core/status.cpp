#include <ferry/status.hpp>

#include <fmt/format.h>

namespace ferry {

std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::out_of_bounds: return "out_of_bounds";
    case errc::bad_fot_index: return "bad_fot_index";
    case errc::corrupt: return "corrupt";
    case errc::bad_version: return "bad_version";
    case errc::bad_format: return "bad_format";
    case errc::io_error: return "io_error";
    case errc::not_local: return "not_local";
    case errc::timeout: return "timeout";
    case errc::peer_dead: return "peer_dead";
    case errc::unknown_code: return "unknown_code";
    case errc::policy_violation: return "policy_violation";
    case errc::no_matching_variant: return "no_matching_variant";
    case errc::compile_error: return "compile_error";
    case errc::unsupported: return "unsupported";
    case errc::internal: return "internal";
    case errc::cancelled: return "cancelled";
    case errc::out_of_memory: return "out_of_memory";
    case errc::too_large: return "too_large";
    case errc::unsigned_code: return "unsigned_code";
    case errc::untrusted_signer: return "untrusted_signer";
    case errc::bad_signature: return "bad_signature";
    case errc::memory_fault: return "memory_fault";
    case errc::arithmetic_fault: return "arithmetic_fault";
    case errc::trapped: return "trapped";
    case errc::stack_overflow: return "stack_overflow";
    case errc::fuel_exhausted: return "fuel_exhausted";
  }
  return "unknown_error";
}

std::string status::describe() const {
  if (ok()) return "ok";
  return fmt::format("{}: {}", to_string(code_), message_);
}

}  // namespace ferry
