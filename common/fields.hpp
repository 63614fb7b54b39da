// The one way a plain value lists its fields: an `inspect(f, x)` overload, found by argument-
// dependent lookup, that calls `f` once with every field as `field("name", x.member)`, in the
// order of the value's wire schema. Everything generic about values is written once against
// it: the journal codec and the RPC adapters (capnp, schema/fields_capnp.hpp), JSON
// (common/fields_json.hpp), text rendering and replay's comparisons (journal/events.hpp).
//
//   struct vm_configured { std::uint64_t vcpus = 0, memory_mib = 0; };
//   template <class F> void inspect(F& f, vm_configured& x) {
//     f(field("vcpus", x.vcpus), field("memory_mib", x.memory_mib));
//   }
//
// Field types: std::string, bool, and integers. Names are snake_case; where a value has a capnp
// schema, each name is its capnp field's name in snake_case (checked by the tests that encode
// every value). Header-only, no dependencies beyond std; any thread.
#pragma once

#include <string_view>
#include <type_traits>
#include <utility>

namespace banger {

template <class T>
struct field_ref {
  std::string_view name;
  T& value;
};

template <class T>
field_ref<T> field(std::string_view name, T& value) {
  return {name, value};
}

namespace detail {
template <class Fn>
struct field_visitor {
  Fn& fn;
  template <class... Ts>
  void operator()(field_ref<Ts>... fs) {
    (fn(fs.name, fs.value), ...);
  }
};
} // namespace detail

/// Calls `fn(name, member&)` for every field `inspect` lists, in order.
template <class T, class Fn>
void for_each_field(T& x, Fn&& fn) {
  detail::field_visitor<std::remove_reference_t<Fn>> v{fn};
  inspect(v, x);
}

/// The same on a const value: `fn` gets const references. (inspect takes a mutable value so one
/// overload serves readers and writers; nothing here writes through it.)
template <class T, class Fn>
void for_each_field(const T& x, Fn&& fn) {
  for_each_field(const_cast<T&>(x), [&](std::string_view name, auto& v) { fn(name, std::as_const(v)); });
}

/// How many fields `inspect` lists for T.
template <class T>
std::size_t field_count() {
  T x{};
  std::size_t n = 0;
  for_each_field(x, [&](std::string_view, auto&) { ++n; });
  return n;
}

} // namespace banger
