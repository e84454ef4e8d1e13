// ⑧ execute, in the calling process: a call that automatic placement keeps
// in the caller (runtime_options::caller_speed) runs on the invoking thread,
// through the same mobile-code ABI as on a node, against private copies of
// the ranges it reads, pulled from their owners.
//
//   cx.local / cx.view / cx.read / cx.fetch -> pull the range (a copy: writes stay in the call)
//   cx.invoke                    -> a call from this process, waited for
//   cx.forward                   -> recorded; the runtime sends it once the function returns
//   cx.migrate                   -> rt.objects().migrate from this process
//   cx.resolve / cx.make_ptr     -> unsupported (the holder's FOT stays at its owner)
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "exec/call_context.hpp"

namespace ferry::exec {

class caller_host final : public call_host {
 public:
  /// Bytes [offset, +length) of object `id`, from its owner.
  using pull_fn = std::function<result<std::vector<std::uint8_t>>(const object_id& id, std::uint64_t offset,
                                                                  std::uint64_t length)>;
  /// A call of host function `fn` routed by `target`, waited for; its result into `out`.
  using invoke_fn = std::function<status(const void* fn, const ferry_ref& target, std::span<const std::uint8_t> args,
                                         void* out, std::uint64_t out_size)>;

  /// Move object `id` to node `node` (rt.objects().migrate).
  using migrate_fn = std::function<status(const object_id& id, std::uint32_t node)>;

  caller_host(std::uint32_t self, pull_fn pull, invoke_fn invoke, migrate_fn migrate)
      : self_(self), pull_(std::move(pull)), invoke_(std::move(invoke)), migrate_(std::move(migrate)) {}

  /// What cx.forward recorded: the runtime continues with this call.
  struct continuation {
    const void* fn = nullptr;
    ferry_ref target{};
    std::vector<std::uint8_t> args;
  };
  [[nodiscard]] const continuation& forwarded() const { return next_; }
  /// Bytes the call pulled.
  [[nodiscard]] std::uint64_t pulled_bytes() const { return pulled_; }

  bool local(call_context& cx, const ferry_ref& r, std::uint64_t size, access how, void** out) override;
  bool read(call_context& cx, const ferry_ref& r, void* out, std::uint64_t size) override;
  bool forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
               std::uint64_t size) override;
  bool invoke(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
              void* result, std::uint64_t result_size) override;
  bool resolve(call_context& cx, const ferry_ref& holder, std::uint64_t ptr_bits, ferry_ref* out) override;
  bool make_ptr(call_context& cx, const ferry_ref& holder, const ferry_ref& target, std::uint64_t* out) override;
  bool fetch(call_context& cx, const ferry_ref& r, std::uint64_t size, const void** out) override;
  bool migrate(call_context& cx, const ferry_ref& r, std::uint32_t node) override;
  [[nodiscard]] std::uint32_t node_id() const override { return self_; }
  [[nodiscard]] std::uint32_t node_kind() const override { return FERRY_NODE_HOST; }
  [[nodiscard]] const char* node_triple() const override;
  [[nodiscard]] const char* node_cpu() const override;

 private:
  bool pull(call_context& cx, const ferry_ref& r, std::uint64_t size, const char* what, std::uint8_t** out);
  bool unsupported(call_context& cx, const char* what);

  std::uint32_t self_;
  pull_fn pull_;
  invoke_fn invoke_;
  migrate_fn migrate_;
  continuation next_;
  std::uint64_t pulled_ = 0;
};

}  // namespace ferry::exec
