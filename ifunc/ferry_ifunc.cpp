// ferry's own ifunc API (<ferry/ifunc.h>) on the ifunc core: parameter
// structs and handles in, ferry::status out as an errc value with the text
// kept per thread. Messages travel as ifunc frames (service.cpp).
#include <ferry/ifunc.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ifunc/library.hpp"
#include "ifunc/message.hpp"
#include "ifunc/registry.hpp"
#include "ifunc/service.hpp"

namespace {

using namespace ferry;

thread_local std::string last_error;

ferry_ifunc_status fail(const status& st) {
  last_error = st.describe();
  return static_cast<ferry_ifunc_status>(st.code());
}

ferry_ifunc_status ok() { return 0; }

ifunc::context& cx_of(ferry_ifunc_context* c) { return *reinterpret_cast<ifunc::context*>(c); }
ferry_ifunc_context* handle_of(ifunc::context& c) { return reinterpret_cast<ferry_ifunc_context*>(&c); }

template <class P>
bool has(const P* p, std::uint64_t field) {
  return p && (p->field_mask & field) == field;
}

// The ifunc `h` of context `c`: registered there (a handle of another
// context is refused: contexts are scopes).
std::shared_ptr<ifunc::entry> find(ifunc::context& c, ferry_ifunc_h h) {
  auto e = ifunc::registry::instance().find(h);
  return e && e->owner == &c ? e : nullptr;
}

result<wire::ifunc_code> code_of(const ifunc::context& c, const ferry_ifunc_register_params& p) {
  const bool pure = has(&p, FERRY_IFUNC_REGISTER_FIELD_PURE) && p.pure != 0;
  if (has(&p, FERRY_IFUNC_REGISTER_FIELD_BITCODE)) {
    if (!p.bitcode && p.n_bitcode > 0) return make_error(errc::invalid_argument, "ferry_ifunc_register: no bitcode");
    std::vector<ifunc::bitcode_buffer> bitcode;
    for (std::size_t i = 0; i < p.n_bitcode; ++i)
      bitcode.push_back({p.bitcode[i].triple ? p.bitcode[i].triple : "",
                         std::span(static_cast<const std::uint8_t*>(p.bitcode[i].bitcode),
                                   p.bitcode[i].bitcode ? p.bitcode[i].size : 0)});
    std::vector<std::string> deps;
    if (has(&p, FERRY_IFUNC_REGISTER_FIELD_DEPS)) {
      if (!p.deps && p.n_deps > 0) return make_error(errc::invalid_argument, "ferry_ifunc_register: no deps");
      deps.assign(p.deps, p.deps + p.n_deps);
    }
    return ifunc::library_from_memory(p.name, pure, bitcode, std::move(deps));
  }
  if (c.owner->on_node() && !has(&p, FERRY_IFUNC_REGISTER_FIELD_LIB_DIR))
    return make_error(errc::not_found, fmt::format("no ifunc {} installed on node {} for this context (nodes read "
                                                   "no library files: send it with FERRY_IFUNC_SEND_INSTALL)",
                                                   p.name, c.owner->self()));
  if (c.owner->on_node())
    return make_error(errc::invalid_argument, "ferry_ifunc_register: nodes read no library files");
  const char* dir = has(&p, FERRY_IFUNC_REGISTER_FIELD_LIB_DIR) ? p.lib_dir : std::getenv("FERRY_IFUNC_LIB_DIR");
  return ifunc::read_library(dir && *dir ? dir : ".", p.name, pure);
}

// What ferry_ifunc_poll and ferry_ifunc_wait do with what they took: a
// failure a node reported, or a message copied into `buffer` and run.
ferry_ifunc_status run_arrival(ifunc::context& c, std::optional<ifunc::context::arrival> a, void* buffer,
                               size_t buffer_size, void* target_args) {
  if (!a) return FERRY_IFUNC_NO_MESSAGE;
  if (!a->failure) return fail(a->failure);
  if (!buffer || a->message.size() > buffer_size)
    return fail(make_error(errc::too_large, fmt::format("ifunc message of {} bytes does not fit the {}-byte buffer "
                                                        "(dropped)",
                                                        a->message.size(), buffer_size)));
  std::memcpy(buffer, a->message.data(), a->message.size());
  auto taken = ifunc::take_message(ifunc::registry::instance(), &c, c.owner->member_linking(), buffer, buffer_size);
  if (!taken) return fail(taken.error());
  if (!*taken) return fail(make_error(errc::bad_format, "an ifunc frame without a whole ifunc message"));
  const auto& m = **taken;
  if (auto st = ifunc::run_contained(c, *m.fn, m.payload, m.payload_size, target_args, 0); !st) return fail(st);
  return ok();
}
}  // namespace

extern "C" {

ferry_ifunc_status ferry_ifunc_context_create(const ferry_ifunc_context_params* params,
                                              ferry_ifunc_context** context_p) {
  if (!context_p) return fail(make_error(errc::invalid_argument, "ferry_ifunc_context_create: no context to fill"));
  ifunc::service* s = ifunc::process_service();
  if (!s) return fail(make_error(errc::not_found, "this process has no ferry runtime (construct a ferry::runtime first)"));
  auto cx = s->open(has(params, FERRY_IFUNC_CONTEXT_FIELD_NAME) && params->name ? params->name : "");
  *context_p = handle_of(*cx.release());
  return ok();
}

void ferry_ifunc_context_destroy(ferry_ifunc_context* context) {
  if (!context) return;
  std::unique_ptr<ifunc::context> cx(&cx_of(context));
  cx->owner->close(*cx);
}

ferry_ifunc_status ferry_ifunc_register(ferry_ifunc_context* context, const ferry_ifunc_register_params* params,
                                        ferry_ifunc_h* ifunc_p) {
  if (!context || !ifunc_p || !has(params, FERRY_IFUNC_REGISTER_FIELD_NAME) || !params->name)
    return fail(make_error(errc::invalid_argument, "ferry_ifunc_register: needs a context, a NAME and a handle to fill"));
  auto& c = cx_of(context);
  const bool from_files = !has(params, FERRY_IFUNC_REGISTER_FIELD_BITCODE) &&
                          !has(params, FERRY_IFUNC_REGISTER_FIELD_LIB_DIR);
  if (from_files)
    if (auto e = ifunc::registry::instance().find(&c, std::string_view(params->name))) {
      *ifunc_p = e->handle;
      return ok();
    }
  auto code = code_of(c, *params);
  if (!code) return fail(code.error());
  auto e = ifunc::registry::instance().add(&c, std::move(*code), c.owner->member_linking());
  if (!e) return fail(e.error());
  *ifunc_p = (*e)->handle;
  return ok();
}

ferry_ifunc_status ferry_ifunc_deregister(ferry_ifunc_context* context, ferry_ifunc_h ifunc) {
  if (!context) return fail(make_error(errc::invalid_argument, "ferry_ifunc_deregister: no context"));
  if (!find(cx_of(context), ifunc))
    return fail(make_error(errc::not_found,
                           fmt::format("ifunc handle {} is not registered in this context (deregistered twice?)", ifunc)));
  if (auto st = ifunc::registry::instance().remove(ifunc); !st) return fail(st);
  return ok();
}

ferry_ifunc_status ferry_ifunc_msg_create(ferry_ifunc_context* context, ferry_ifunc_h ifunc, void* source_args,
                                          size_t source_args_size, ferry_ifunc_msg* msg_p) {
  if (!context || !msg_p) return fail(make_error(errc::invalid_argument, "ferry_ifunc_msg_create: no context or message"));
  auto e = find(cx_of(context), ifunc);
  if (!e) return fail(make_error(errc::not_found, fmt::format("ifunc handle {} is not registered in this context", ifunc)));
  auto m = ifunc::create_message(std::move(e), source_args, source_args_size);
  if (!m) return fail(m.error());
  *msg_p = {ifunc, m->frame, m->frame_size};
  return ok();
}

ferry_ifunc_status ferry_ifunc_msg_get_payload_ptr(const ferry_ifunc_msg* msg, void** payload, size_t* payload_size) {
  if (!msg || !payload) return fail(make_error(errc::invalid_argument, "ferry_ifunc_msg_get_payload_ptr: no message"));
  auto p = ifunc::payload_of(msg->frame);
  if (!p) return fail(p.error());
  *payload = p->first;
  if (payload_size) *payload_size = p->second;
  return ok();
}

void ferry_ifunc_msg_free(ferry_ifunc_msg* msg) {
  if (!msg) return;
  ifunc::free_message(msg->frame);
  msg->frame = nullptr;
}

ferry_ifunc_status ferry_ifunc_send(ferry_ifunc_context* context, const ferry_ifunc_msg* msg,
                                    const ferry_ifunc_send_params* params) {
  if (!context || !msg || !msg->frame)
    return fail(make_error(errc::invalid_argument, "ferry_ifunc_send: no context or message"));
  auto& c = cx_of(context);
  wire::node_index to = wire::kNoNode;
  if (has(params, FERRY_IFUNC_SEND_FIELD_ORIGIN)) {
    to = c.origin;
  } else if (has(params, FERRY_IFUNC_SEND_FIELD_NODE)) {
    if (params->node >= c.owner->nodes())
      return fail(make_error(errc::invalid_argument, fmt::format("ferry_ifunc_send: no node {} (the cluster has {})",
                                                                 params->node, c.owner->nodes())));
    to = params->node;
  } else {
    return fail(make_error(errc::invalid_argument, "ferry_ifunc_send: say where (FIELD_NODE or FIELD_ORIGIN)"));
  }
  if (to == c.owner->self() && !c.owner->on_node())
    return fail(make_error(errc::invalid_argument, "ferry_ifunc_send: the origin program sends to nodes"));
  const ferry_ref target = has(params, FERRY_IFUNC_SEND_FIELD_TARGET) ? params->target : ferry_ref{};
  std::uint8_t flags = 0;
  if (has(params, FERRY_IFUNC_SEND_FIELD_FLAGS) && (params->flags & FERRY_IFUNC_SEND_INSTALL)) flags |= wire::kIfuncInstall;
  const auto image = ifunc::image_for(msg->frame, to);
  if (auto st = c.owner->send(c, to, image, target, flags); !st) {
    ifunc::ifunc_of(msg->frame)->forget_peer(to);  // not sent: the code goes with the next one
    return fail(st);
  }
  return ok();
}

ferry_ifunc_status ferry_ifunc_poll(ferry_ifunc_context* context, void* buffer, size_t buffer_size,
                                    void* target_args) {
  if (!context) return fail(make_error(errc::invalid_argument, "ferry_ifunc_poll: no context"));
  auto& c = cx_of(context);
  return run_arrival(c, c.owner->next(c), buffer, buffer_size, target_args);
}

ferry_ifunc_status ferry_ifunc_wait(ferry_ifunc_context* context, void* buffer, size_t buffer_size,
                                    void* target_args, uint32_t timeout_ms) {
  if (!context) return fail(make_error(errc::invalid_argument, "ferry_ifunc_wait: no context"));
  auto& c = cx_of(context);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  return run_arrival(c, timeout_ms == 0 ? c.owner->next(c) : c.owner->wait(c, deadline), buffer, buffer_size,
                     target_args);
}

ferry_ifunc_status ferry_ifunc_here(ferry_ifunc_here_info* info) {
  const auto [cx, fn] = ifunc::running_here();
  if (!info || !cx) return fail(make_error(errc::not_found, "ferry_ifunc_here: no NAME_main runs on this thread"));
  info->context = handle_of(*cx);
  info->self = fn->handle;
  info->member = cx->owner->self();
  info->origin = cx->origin;
  info->nodes = cx->owner->nodes();
  return ok();
}

const char* ferry_ifunc_last_error(void) { return last_error.c_str(); }

}  // extern "C"

namespace ferry::ifunc {

const linking& service::ferry_linking() {
  static const linking l{"ferry",
                         {
                             {"ferry_ifunc_register", reinterpret_cast<void*>(&ferry_ifunc_register)},
                             {"ferry_ifunc_deregister", reinterpret_cast<void*>(&ferry_ifunc_deregister)},
                             {"ferry_ifunc_msg_create", reinterpret_cast<void*>(&ferry_ifunc_msg_create)},
                             {"ferry_ifunc_msg_get_payload_ptr", reinterpret_cast<void*>(&ferry_ifunc_msg_get_payload_ptr)},
                             {"ferry_ifunc_msg_free", reinterpret_cast<void*>(&ferry_ifunc_msg_free)},
                             {"ferry_ifunc_send", reinterpret_cast<void*>(&ferry_ifunc_send)},
                             {"ferry_ifunc_here", reinterpret_cast<void*>(&ferry_ifunc_here)},
                             {"ferry_ifunc_last_error", reinterpret_cast<void*>(&ferry_ifunc_last_error)},
                         },
                         /*all_pure=*/true,
                         /*metered=*/true,
                         /*trusted_signers=*/{}};
  return l;
}

const linking& service::ferry_linking(const std::vector<signing_public_key>& trusted) {
  if (trusted.empty()) return ferry_linking();
  static std::mutex mu;
  static std::map<std::vector<signing_public_key>, std::unique_ptr<const linking>> by_keys;  // engines key on &linking
  std::lock_guard lock(mu);
  auto& slot = by_keys[trusted];
  if (!slot) {
    auto l = std::make_unique<linking>(ferry_linking());
    l->trusted_signers = trusted;
    slot = std::move(l);
  }
  return *slot;
}

const linking& service::member_linking() const {
  static const std::vector<signing_public_key> none;
  return ferry_linking(node_ ? node_->trusted_signers : none);
}

}  // namespace ferry::ifunc
