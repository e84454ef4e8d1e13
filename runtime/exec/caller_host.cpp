#include "exec/caller_host.hpp"

#include <cstring>

#include <fmt/format.h>

#include "jit/jit.hpp"

namespace ferry::exec {

namespace {
object_id id_of(const ferry_ref& r) { return {r.id_hi, r.id_lo}; }
}  // namespace

bool caller_host::pull(call_context& cx, const ferry_ref& r, std::uint64_t size, const char* what, std::uint8_t** out) {
  if (size > wire::kMaxObjectGet) {
    cx.failure = make_error(errc::too_large, fmt::format("{} of {} bytes: at most {} at once", what, size,
                                                         wire::kMaxObjectGet));
    return false;
  }
  auto bytes = pull_(id_of(r), r.offset, size);
  if (!bytes) {
    cx.failure = make_error(bytes.code(), fmt::format("{} in the caller: {}", what, bytes.error().message()));
    return false;
  }
  if (bytes->size() != size) {
    cx.failure = make_error(errc::bad_format, fmt::format("{} asked for {} bytes, got {}", what, size, bytes->size()));
    return false;
  }
  pulled_ += size;
  cx.fetched.push_back({std::move(*bytes), nullptr});  // the caller has no node memory limit to reserve against
  *out = cx.fetched.back().bytes.data();
  return true;
}

bool caller_host::local(call_context& cx, const ferry_ref& r, std::uint64_t size, access how, void** out) {
  std::uint8_t* p = nullptr;
  if (!pull(cx, r, size, how == access::read ? "cx.view" : "cx.local", &p)) return false;
  *out = p;
  return true;
}

bool caller_host::read(call_context& cx, const ferry_ref& r, void* out, std::uint64_t size) {
  std::uint8_t* p = nullptr;
  if (!pull(cx, r, size, "cx.read", &p)) return false;
  if (size) std::memcpy(out, p, size);
  return true;
}

bool caller_host::fetch(call_context& cx, const ferry_ref& r, std::uint64_t size, const void** out) {
  std::uint8_t* p = nullptr;
  if (!pull(cx, r, size, "cx.fetch", &p)) return false;
  *out = p;
  return true;
}

bool caller_host::forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
                          std::uint64_t size) {
  const auto* a = static_cast<const std::uint8_t*>(args);
  next_ = continuation{fn, target, std::vector<std::uint8_t>(a, a + size)};
  cx.forwarded = true;
  return true;
}

bool caller_host::invoke(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
                         std::uint64_t size, void* result, std::uint64_t result_size) {
  auto s = invoke_(fn, target, {static_cast<const std::uint8_t*>(args), size}, result, result_size);
  if (s.ok()) return true;
  cx.failure = std::move(s);
  return false;
}

bool caller_host::migrate(call_context& cx, const ferry_ref& r, std::uint32_t node) {
  auto s = migrate_(id_of(r), node);
  if (s.ok()) return true;
  cx.failure = std::move(s);
  return false;
}

bool caller_host::unsupported(call_context& cx, const char* what) {
  cx.failure = make_error(errc::unsupported,
                          fmt::format("{} in a call placement runs in the caller: the holder's FOT stays with its "
                                      "owner (use placement::owner for code that follows ptrs)",
                                      what));
  return false;
}

bool caller_host::resolve(call_context& cx, const ferry_ref&, std::uint64_t, ferry_ref*) {
  return unsupported(cx, "cx.resolve");
}

bool caller_host::make_ptr(call_context& cx, const ferry_ref&, const ferry_ref&, std::uint64_t*) {
  return unsupported(cx, "cx.make_ptr");
}

namespace {
const jit_target& host_target() {
  static const jit_target t = jit_target::host();
  return t;
}
}  // namespace

const char* caller_host::node_triple() const { return host_target().triple.c_str(); }
const char* caller_host::node_cpu() const { return host_target().cpu.c_str(); }

}  // namespace ferry::exec
