// Plain values (common/fields.hpp) to and from capnp structs, generically: each field inspect()
// lists goes to the capnp field of the same name in camelCase ("memory_mib" -> memoryMib), with
// capnp's own range checks on integers. Used where a value's wire form is a capnp struct whose
// fields mirror it: journal events (journal/codec.cpp) and the RPC's command values (daemon/,
// cli/). Include from .cpp files only (capnp/dynamic.h). Pure; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <kj/exception.h>

#include "common/fields.hpp"

namespace banger::capnp_fields {

/// "memory_mib" -> "memoryMib".
inline std::string camel(std::string_view snake) {
  std::string out;
  bool up = false;
  for (char c : snake) {
    if (c == '_') {
      up = true;
      continue;
    }
    out += up && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    up = false;
  }
  return out;
}

/// "memoryMib" -> "memory_mib".
inline std::string snake(std::string_view camel_name) {
  std::string out;
  for (char c : camel_name) {
    if (c >= 'A' && c <= 'Z') {
      out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

/// The capnp fields of `schema` that T's inspect() names, in inspect order. Throws
/// kj::Exception when one is missing (a value and its schema disagree: a bug the encode tests
/// catch). Look it up once per schema and keep it.
template <class T>
std::vector<capnp::StructSchema::Field> fields_for(capnp::StructSchema schema) {
  std::vector<capnp::StructSchema::Field> out;
  T probe{};
  for_each_field(probe, [&](std::string_view name, auto&) {
    KJ_IF_MAYBE (f, schema.findFieldByName(camel(name))) {
      out.push_back(*f);
    } else {
      KJ_FAIL_REQUIRE("a value's field has no capnp field of that name", std::string(name).c_str(),
                      schema.getProto().getDisplayName());
    }
  });
  return out;
}

/// Writes every field of `x` into `b`; `fields` is fields_for<T>(b's schema).
template <class T>
void write(capnp::DynamicStruct::Builder b, const std::vector<capnp::StructSchema::Field>& fields, const T& x) {
  std::size_t i = 0;
  for_each_field(x, [&](std::string_view, const auto& v) {
    using t = std::decay_t<decltype(v)>;
    const auto& f = fields[i++];
    if constexpr (std::is_same_v<t, std::string>)
      b.set(f, capnp::Text::Reader(v.data(), v.size()));
    else
      b.set(f, v);
  });
}

/// Reads every field of `x` from `r`; `fields` is fields_for<T>(r's schema). Throws kj::Exception
/// on a value out of range for its C++ type (the codec turns that into an error).
template <class T>
void read(capnp::DynamicStruct::Reader r, const std::vector<capnp::StructSchema::Field>& fields, T& x) {
  std::size_t i = 0;
  for_each_field(x, [&](std::string_view, auto& v) {
    using t = std::decay_t<decltype(v)>;
    auto value = r.get(fields[i++]);
    if constexpr (std::is_same_v<t, std::string>) {
      auto text = value.template as<capnp::Text>();
      v.assign(text.begin(), text.size());
    } else {
      v = value.template as<t>();
    }
  });
}

/// Writes the alternative `v` holds into union `b`: the member named after its `name` in camelCase,
/// set (a Void member) or initialised and filled (a struct member). Throws kj::Exception when the
/// union has no such member.
template <class Variant>
void write_union(capnp::DynamicStruct::Builder b, const Variant& v) {
  std::visit(
    [&](const auto& x) {
      using t = std::decay_t<decltype(x)>;
      auto f = b.getSchema().getFieldByName(camel(t::name));
      if (f.getType().isVoid()) {
        b.set(f, capnp::VOID);
        return;
      }
      auto member = b.init(f).template as<capnp::DynamicStruct>();
      write(member, fields_for<t>(member.getSchema()), x);
    },
    v);
}

/// The alternative of Variant whose `name` is the member union `r` holds, in snake_case, with its
/// fields read from that member; nullopt when no alternative has that name (or the union holds a
/// member this build does not know). Throws kj::Exception on a field out of range.
template <class Variant>
std::optional<Variant> read_union(capnp::DynamicStruct::Reader r) {
  std::optional<Variant> out;
  KJ_IF_MAYBE (f, r.which()) {
    auto name = snake(f->getProto().getName().cStr());
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      auto one = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
        using t = std::variant_alternative_t<J, Variant>;
        if (out || t::name != name)
          return;
        t x{};
        if (!f->getType().isVoid()) {
          auto member = r.get(*f).template as<capnp::DynamicStruct>();
          read(member, fields_for<t>(member.getSchema()), x);
        }
        out.emplace(std::in_place_index<J>, std::move(x));
      };
      (one(std::integral_constant<std::size_t, I>{}), ...);
    }
    (std::make_index_sequence<std::variant_size_v<Variant>>{});
  }
  return out;
}

} // namespace banger::capnp_fields
