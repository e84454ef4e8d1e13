#include "code/server.hpp"

namespace ferry::code {

void serve_code_request(session::member& member, const wire::frame& f, const code_lookup& lookup) {
  const auto& req = std::get<wire::code_request_body>(f.body);
  auto blob = lookup(req.code, req.symbol);
  if (!blob) {
    (void)member.send(f.source, {wire::frame_type::error, member.self(), f.call,
                                 wire::error_body{blob.code(), blob.error().message()}});
    return;
  }
  (void)member.send(f.source, {wire::frame_type::code_response, member.self(), f.call,
                               wire::code_response_body{std::move(*blob)}});
}

}  // namespace ferry::code
