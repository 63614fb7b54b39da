// Plain values (common/fields.hpp) to and from JSON objects, generically: each field inspect()
// lists is the member of its name. Include from .cpp files only (nlohmann/json). Pure; any thread.
//
// Reading is lenient in one documented way, because journals recorded long ago are read with it:
// a member that is missing or of another JSON type leaves the field at its default (a string
// member must be a string, a bool a bool, an integer a non-negative integer for an unsigned
// field); an integer is converted as nlohmann's get<T>() converts it.
#pragma once

#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/fields.hpp"

namespace banger::fields_json {

template <class T>
nlohmann::json to_json(const T& x) {
  nlohmann::json j = nlohmann::json::object();
  for_each_field(x, [&](std::string_view name, const auto& v) { j[std::string(name)] = v; });
  return j;
}

template <class T>
void from_json(const nlohmann::json& j, T& x) {
  for_each_field(x, [&](std::string_view name, auto& v) {
    using t = std::decay_t<decltype(v)>;
    auto it = j.find(std::string(name));
    if (it == j.end())
      return;
    if constexpr (std::is_same_v<t, std::string>) {
      if (it->is_string())
        v = it->template get<std::string>();
    } else if constexpr (std::is_same_v<t, bool>) {
      if (it->is_boolean())
        v = it->template get<bool>();
    } else if constexpr (std::is_unsigned_v<t>) {
      if (it->is_number_unsigned())
        v = it->template get<t>();
    } else {
      if (it->is_number_integer())
        v = it->template get<t>();
    }
  });
}

} // namespace banger::fields_json
