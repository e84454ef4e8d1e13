// ferry/mobile.hpp — what mobile C++ code sees: ferry::context.
//
//     [[ferry::mobile]]
//     std::uint64_t chase(ferry::context& cx, ferry::ref<std::uint64_t> table,
//                         std::uint64_t index, std::uint32_t depth) {
//       const std::uint64_t* t = cx.view(table);    // not here: call ends, not_local
//       ...
//       return cx.forward(&chase, next_shard, index, depth - 1);
//     }
//
// Everything here is header-only and compiles into the code object; it calls
// the C runtime API of <ferry/ferry.h>, which the executing node provides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <ferry/ferry.h>
#include <ferry/ref.hpp>

namespace ferry {

namespace detail {

/// Argument block layout: the parameters after the context, like the fields
/// of a C struct in declaration order. One definition for both sides: the
/// caller packs with it, the plugin's trampoline unpacks the same way.
template <class... P>
struct arg_layout {
  static constexpr std::size_t count = sizeof...(P);
  static constexpr std::size_t sizes[count + 1] = {sizeof(P)..., 0};
  static constexpr std::size_t aligns[count + 1] = {alignof(P)..., 1};
  static constexpr std::size_t offset(std::size_t i) {
    std::size_t off = 0;
    for (std::size_t k = 0; k <= i && k < count; ++k) {
      off = (off + aligns[k] - 1) / aligns[k] * aligns[k];
      if (k < i) off += sizes[k];
    }
    return off;
  }
  static constexpr std::size_t size() {
    if constexpr (count == 0) return 0;
    else return offset(count - 1) + sizes[count - 1];
  }
};

template <class... P, class... A, std::size_t... I>
void pack_args_impl(std::byte* out, std::index_sequence<I...>, A&&... args) {
  (([&] {
     const P v = static_cast<P>(args);
     std::memcpy(out + arg_layout<P...>::offset(I), &v, sizeof(P));
   }()),
   ...);
}

/// Pack `args` (converted to the parameter types P...) into `out`, which has
/// room for arg_layout<P...>::size() bytes.
template <class... P, class... A>
void pack_args(std::byte* out, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "wrong number of arguments for this mobile function");
  pack_args_impl<P...>(out, std::index_sequence_for<P...>{}, std::forward<A>(args)...);
}

/// The byte size of `count` Ts. No object holds 2^64 bytes: a count whose
/// size does not fit 64 bits asks for 2^64 - 1 bytes, which fails the node's
/// bounds check (out_of_bounds) where `sizeof(T) * count` would have wrapped
/// to a small size.
template <class T>
constexpr std::uint64_t bytes_of(std::uint64_t count) {
  return count > ~std::uint64_t{0} / sizeof(T) ? ~std::uint64_t{0} : sizeof(T) * count;
}

template <class T>
ferry_ref to_c(ref<T> r) {
  return {r.id.hi, r.id.lo, r.offset};
}

template <class T>
struct is_ref : std::false_type {};
template <class T>
struct is_ref<ref<T>> : std::true_type {};

/// The reference a call is routed by: its first ref<T> argument.
template <class First, class... Rest>
ferry_ref routing_ref(const First& first, const Rest&... rest) {
  if constexpr (is_ref<First>::value) return to_c(first);
  else if constexpr (sizeof...(Rest) > 0) return routing_ref(rest...);
  else {
    static_assert(sizeof(First) == 0, "a routed call needs a ferry::ref argument");
    return {};
  }
}

}  // namespace detail

/// The execution context of a mobile call. Mobile functions take it as their
/// first parameter (by reference); it is only valid during the call.
class context {
 public:
  context() = delete;
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  /// Pointer to the local T at `r`. If the object is not on this node (or is
  /// too small) the call ends here and the caller gets not_local /
  /// out_of_bounds: the pointer is never null.
  template <class T>
  T* local(ref<T> r) {
    const ferry_ref c = detail::to_c(r);
    return static_cast<T*>(ferry_local(handle(), &c, sizeof(T)));
  }
  /// Pointer to `count` local Ts starting at `r` (bounds-checked as above).
  /// A count whose byte size does not fit 64 bits fails with out_of_bounds.
  /// The call may write only those bytes through the pointer (and local(r)'s
  /// one T): on a node that keeps objects in files they are what is sealed
  /// when the call ends, and there bounds-checked code that writes or reads
  /// past them ends with memory_fault. Take one pointer per range the call
  /// works on, or view() for reading.
  template <class T>
  T* local(ref<T> r, std::uint64_t count) {
    const ferry_ref c = detail::to_c(r);
    return static_cast<T*>(ferry_local(handle(), &c, detail::bytes_of<T>(count)));
  }

  /// Read-only pointer to the local T at `r`; fails like local(). For code
  /// that only reads an object: the node does not seal it when the call
  /// ends (on a storage node, no checksum pass over the whole object and no
  /// msync after every call), so the call may also run on the node's network
  /// thread. On a node that keeps objects in files a write through the
  /// pointer (a const_cast) ends the call with memory_fault and leaves the
  /// object as it was; on one that keeps them in memory the bounds checks
  /// do the same (not on an `--unchecked` node).
  template <class T>
  const T* view(ref<T> r) {
    const ferry_ref c = detail::to_c(r);
    return static_cast<const T*>(ferry_view(handle(), &c, sizeof(T)));
  }
  /// Read-only pointer to `count` local Ts starting at `r` (as view(r) and
  /// local(r, count)).
  template <class T>
  const T* view(ref<T> r, std::uint64_t count) {
    const ferry_ref c = detail::to_c(r);
    return static_cast<const T*>(ferry_view(handle(), &c, detail::bytes_of<T>(count)));
  }

  /// The global reference a ptr stored in the local object `holder` denotes
  /// (through the holder's FOT; only `holder.id` matters). If the holder is
  /// not here, `p` is null or names a FOT slot the holder lacks, the call
  /// ends with not_local / invalid_argument / bad_fot_index.
  template <class H, class T>
  ref<T> resolve(ref<H> holder, ptr<T> p) {
    const ferry_ref h = detail::to_c(holder);
    ferry_ref out{};
    ferry_resolve(handle(), &h, p.bits(), &out);
    return ref<T>{object_id{out.id_hi, out.id_lo}, out.offset};
  }
  /// A ptr, to be stored inside the local object `holder`, that denotes
  /// `target` (a FOT slot is added to the holder when needed).
  template <class H, class T>
  ptr<T> make_ptr(ref<H> holder, ref<T> target) {
    const ferry_ref h = detail::to_c(holder);
    const ferry_ref t = detail::to_c(target);
    return ptr<T>::from_bits(ferry_make_ptr(handle(), &h, &t));
  }

  /// Pull on demand: a read-only copy of `count` Ts at `r`, from wherever the
  /// object lives (see ferry_fetch); valid until the call ends.
  template <class T>
  const T* fetch(ref<T> r, std::uint64_t count = 1) {
    const ferry_ref c = detail::to_c(r);
    return static_cast<const T*>(ferry_fetch(handle(), &c, detail::bytes_of<T>(count)));
  }
  /// The same for a byte range: `length` bytes from `offset` past `r`.
  template <class T>
  const std::byte* fetch(ref<T> r, std::uint64_t offset, std::uint64_t length) {
    ferry_ref c = detail::to_c(r);
    c.offset = r.offset + offset < r.offset ? ~std::uint64_t{0} : r.offset + offset;  // past any object: out_of_bounds
    return static_cast<const std::byte*>(ferry_fetch(handle(), &c, length));
  }

  /// Copy `count` Ts starting at `r` into `out`, streamed from the node's
  /// store at rest: on a storage node with O_DIRECT from its device, so a
  /// scan of an object larger than memory reads it chunk by chunk instead
  /// of mapping it whole. Fails like local().
  template <class T>
  void read(ref<T> r, T* out, std::uint64_t count) {
    const ferry_ref c = detail::to_c(r);
    ferry_read(handle(), &c, out, detail::bytes_of<T>(count));
  }

  /// Move the object `r` names to node `node` and wait until it is there
  /// (see ferry_migrate); not the object this call is routed by.
  template <class T>
  void migrate(ref<T> r, std::uint32_t node) {
    const ferry_ref c = detail::to_c(r);
    ferry_migrate(handle(), &c, node);
  }

  /// Continue with `fn` where the first ref argument lives; the final result
  /// goes straight to the original caller. Use as `return cx.forward(...)`.
  template <class R, class... P, class... A>
  R forward(R (*fn)(context&, P...), A&&... args) {
    std::byte block[detail::arg_layout<P...>::size() + 1];
    detail::pack_args<P...>(block, args...);
    const ferry_ref target = detail::routing_ref(static_cast<P>(args)...);
    ferry_forward(handle(), reinterpret_cast<const void*>(fn), &target, block, detail::arg_layout<P...>::size());
    if constexpr (!std::is_void_v<R>) return R{};
  }

  /// Nested call: run `fn` where the first ref argument lives, wait for it.
  /// If it fails, the whole call ends with that error.
  template <class R, class... P, class... A>
  R invoke(R (*fn)(context&, P...), A&&... args) {
    std::byte block[detail::arg_layout<P...>::size() + 1];
    detail::pack_args<P...>(block, args...);
    const ferry_ref target = detail::routing_ref(static_cast<P>(args)...);
    if constexpr (std::is_void_v<R>) {
      ferry_invoke(handle(), reinterpret_cast<const void*>(fn), &target, block, detail::arg_layout<P...>::size(),
                   nullptr, 0);
    } else {
      R out{};
      ferry_invoke(handle(), reinterpret_cast<const void*>(fn), &target, block, detail::arg_layout<P...>::size(), &out,
                   sizeof(R));
      return out;
    }
  }

  /// This node: index in the cluster, kind (FERRY_NODE_*), target triple
  /// ("aarch64-unknown-linux-gnu" on a DPU node), and the CPU its code was
  /// compiled for ("cortex-a72").
  std::uint32_t node() { return ferry_node_id(handle()); }
  std::uint32_t node_kind() { return ferry_node_kind(handle()); }
  const char* node_triple() { return ferry_node_triple(handle()); }
  const char* node_cpu() { return ferry_node_cpu(handle()); }

 private:
  // A context& is the ferry_context* the runtime passes: no state of its own.
  ferry_context* handle() { return reinterpret_cast<ferry_context*>(this); }
};

}  // namespace ferry
