// The UCX ifunc API (include/ucp/api/ucp.h here) on ferry's ifunc core:
// translates handles and ferry::status into the prototype's types and
// ucs_status_t, and logs each error where it is first seen, as UCX does.
#include <ucp/api/ucp.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ifunc/library.hpp"
#include "ifunc/message.hpp"
#include "ifunc/registry.hpp"
#include "wire/ifunc_frame.hpp"

#define FERRY_IFUNC_API extern "C" __attribute__((visibility("default")))

namespace {

using namespace ferry;

thread_local std::string last_error;

ucs_status_t to_ucs(errc e) {
  switch (e) {
    case errc::ok: return UCS_OK;
    case errc::not_found:
    case errc::unknown_code: return UCS_ERR_NO_ELEM;
    case errc::invalid_argument:
    case errc::bad_format:
    case errc::bad_version:
    case errc::corrupt:
    case errc::compile_error: return UCS_ERR_INVALID_PARAM;
    case errc::policy_violation: return UCS_ERR_REJECTED;
    case errc::no_matching_variant:
    case errc::unsupported: return UCS_ERR_UNSUPPORTED;
    case errc::cancelled: return UCS_ERR_CANCELED;
    case errc::too_large: return UCS_ERR_BUFFER_TOO_SMALL;
    case errc::out_of_bounds: return UCS_ERR_EXCEEDS_LIMIT;
    case errc::out_of_memory: return UCS_ERR_NO_MEMORY;
    case errc::io_error: return UCS_ERR_IO_ERROR;
    default: return UCS_ERR_NO_RESOURCE;
  }
}

ucs_status_t fail(const status& st) {
  last_error = st.describe();
  std::fprintf(stderr, "ferry ifunc: %s\n", last_error.c_str());
  return to_ucs(st.code());
}

ucp_ifunc_h handle_of(const ifunc::entry& e) { return reinterpret_cast<ucp_ifunc_h>(e.handle); }
std::uint64_t handle_id(ucp_ifunc_h h) { return reinterpret_cast<std::uintptr_t>(h); }

ifunc::registry& registry() { return ifunc::registry::instance(); }
const ifunc::linking& linking();

ucs_status_t register_code(ucp_context_h context, result<wire::ifunc_code> code, ucp_ifunc_h* ifunc_p) {
  if (!ifunc_p) return fail(make_error(errc::invalid_argument, "ucp_register_ifunc: no handle to fill"));
  if (!code) return fail(code.error());
  auto e = registry().add(context, std::move(*code), linking());
  if (!e) return fail(e.error());
  *ifunc_p = handle_of(**e);
  return UCS_OK;
}

}  // namespace

FERRY_IFUNC_API ucs_status_t ucp_register_ifunc(ucp_context_h context, ucp_ifunc_reg_param_t param,
                                                ucp_ifunc_h* ifunc_p) {
  if (!param.name) return fail(make_error(errc::invalid_argument, "ucp_register_ifunc: no name"));
  // FERRY_IFUNC_LIB_DIR, or the prototype's UCX_IFUNC_LIB_DIR (stock UCX
  // warns that it does not know that one), or the current directory.
  const char* dir = std::getenv("FERRY_IFUNC_LIB_DIR");
  if (!dir || !*dir) dir = std::getenv("UCX_IFUNC_LIB_DIR");
  return register_code(context, ifunc::read_library(dir && *dir ? dir : ".", param.name, param.pure != 0), ifunc_p);
}

FERRY_IFUNC_API ucs_status_t ucp_register_ifunc_im(ucp_context_h context, ucp_ifunc_reg_param_t param,
                                                   ucp_llvm_bc_t* bcs, int n_bcs, char** deps, int n_deps,
                                                   ucp_ifunc_h* ifunc_p) {
  if (!param.name || (n_bcs > 0 && !bcs) || (n_deps > 0 && !deps) || n_bcs < 0 || n_deps < 0)
    return fail(make_error(errc::invalid_argument, "ucp_register_ifunc_im: missing name, bitcode or deps"));
  std::vector<ifunc::bitcode_buffer> bitcode;
  for (int i = 0; i < n_bcs; ++i)
    bitcode.push_back({bcs[i].triple ? bcs[i].triple : "",
                       std::span(static_cast<const std::uint8_t*>(bcs[i].bc), bcs[i].bc ? bcs[i].size : 0)});
  std::vector<std::string> dep_list(deps, deps + n_deps);
  return register_code(context, ifunc::library_from_memory(param.name, param.pure != 0, bitcode, std::move(dep_list)),
                       ifunc_p);
}

FERRY_IFUNC_API ucs_status_t ferry_ucp_deregister_ifunc(ucp_context_h, ucp_ifunc_h ifunc_h) {
  if (auto st = registry().remove(handle_id(ifunc_h)); !st) return fail(st);
  return UCS_OK;
}

FERRY_IFUNC_API void ucp_deregister_ifunc(ucp_context_h context, ucp_ifunc_h ifunc_h) {
  (void)ferry_ucp_deregister_ifunc(context, ifunc_h);
}

FERRY_IFUNC_API ucs_status_t ucp_ifunc_msg_create(ucp_ifunc_h ifunc_h, void* source_args, std::size_t source_args_size,
                                                  ucp_ifunc_msg_t* msg_p) {
  if (!msg_p) return fail(make_error(errc::invalid_argument, "ucp_ifunc_msg_create: no message to fill"));
  auto e = registry().find(handle_id(ifunc_h));
  if (!e) return fail(make_error(errc::not_found, fmt::format("ifunc handle {} is not registered", handle_id(ifunc_h))));
  auto m = ifunc::create_message(e, source_args, source_args_size);
  if (!m) return fail(m.error());
  *msg_p = {ifunc_h, m->frame, m->frame_size};
  return UCS_OK;
}

FERRY_IFUNC_API ucs_status_t ucp_ifunc_msg_get_payload_ptr(ucp_ifunc_msg_t* msg_p, void** payload,
                                                           std::size_t* payload_size) {
  if (!msg_p || !payload) return fail(make_error(errc::invalid_argument, "ucp_ifunc_msg_get_payload_ptr: no message"));
  auto p = ifunc::payload_of(msg_p->frame);
  if (!p) return fail(p.error());
  *payload = p->first;
  if (payload_size) *payload_size = p->second;
  return UCS_OK;
}

FERRY_IFUNC_API void ucp_ifunc_msg_free(ucp_ifunc_msg_t msg) { ifunc::free_message(msg.frame); }

FERRY_IFUNC_API ucs_status_t ucp_ifunc_send_nbix(ucp_ep_h ep, ucp_ifunc_msg_t msg, std::uint64_t remote_addr,
                                                 ucp_rkey_h rkey) {
  if (!msg.frame) return fail(make_error(errc::invalid_argument, "ucp_ifunc_send_nbix: no message"));
  // One put carries the whole image; the caller completes it with a flush,
  // as for ucp_put_nbi.
  const auto image = ifunc::image_for(msg.frame, reinterpret_cast<std::uintptr_t>(ep));
  return ucp_put_nbi(ep, image.data(), image.size(), remote_addr, rkey);
}

FERRY_IFUNC_API ucs_status_t ucp_poll_ifunc(ucp_context_h context, void* buffer, std::size_t buffer_size,
                                            void* target_args, ucp_worker_h worker) {
  auto taken = ifunc::take_message(registry(), context, linking(), buffer, buffer_size);
  if (!taken) return fail(taken.error());
  if (!*taken) {  // nothing there, or still arriving: the target progresses
    ucp_worker_progress(worker);
    return UCS_ERR_NO_MESSAGE;
  }
  const auto& m = **taken;
  m.fn->main(m.payload, m.payload_size, target_args);
  return UCS_OK;
}

FERRY_IFUNC_API const char* ferry_ucp_ifunc_last_error(void) { return last_error.c_str(); }

namespace {
// The API every ifunc may call, pure or not: recursive sends from NAME_main.
// Unmetered: the compat API runs NAME_main on the host's own thread, as the
// prototype did, with nothing to stop it.
const ifunc::linking& linking() {
  static const ifunc::linking l{"ucp", {
      {"ucp_register_ifunc", reinterpret_cast<void*>(&ucp_register_ifunc)},
      {"ucp_register_ifunc_im", reinterpret_cast<void*>(&ucp_register_ifunc_im)},
      {"ucp_deregister_ifunc", reinterpret_cast<void*>(&ucp_deregister_ifunc)},
      {"ucp_ifunc_msg_create", reinterpret_cast<void*>(&ucp_ifunc_msg_create)},
      {"ucp_ifunc_msg_get_payload_ptr", reinterpret_cast<void*>(&ucp_ifunc_msg_get_payload_ptr)},
      {"ucp_ifunc_msg_free", reinterpret_cast<void*>(&ucp_ifunc_msg_free)},
      {"ucp_ifunc_send_nbix", reinterpret_cast<void*>(&ucp_ifunc_send_nbix)},
      {"ucp_poll_ifunc", reinterpret_cast<void*>(&ucp_poll_ifunc)},
  }, false, false, /*trusted_signers=*/{}};
  return l;
}
}  // namespace
