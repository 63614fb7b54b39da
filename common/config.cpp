// See config.hpp.
#include "common/config.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/core.h>

#include "common/process.hpp"
#include "common/text.hpp"

namespace banger {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

} // namespace

bool images_config::insecure(std::string_view registry) const {
  return std::find(insecure_registries.begin(), insecure_registries.end(), registry) != insecure_registries.end();
}

expected<daemon_config> parse_config(std::string_view text, std::string_view origin) {
  daemon_config c;
  std::size_t line_no = 0;
  enum class section { top, images, file_sync } in = section::top;
  bool images_seen = false;
  file_sync_rule* table = nullptr; // the [[file_sync]] table the lines belong to, if any
  auto table_done = [&]() -> expected<void> {
    if (!table)
      return {};
    for (auto [key, value] : {std::pair{"host", &table->host}, std::pair{"guest", &table->guest}})
      if (value->empty())
        return make_error(errc::bad_request, fmt::format("{}:{}: [[file_sync]] needs `{}`", origin, table->line, key));
    return {};
  };
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    auto bad = [&](std::string_view why) {
      return make_error(errc::bad_request, fmt::format("{}:{}: {}", origin, line_no, why));
    };
    // A '#' outside quotes starts a comment.
    bool in_quotes = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"')
        in_quotes = !in_quotes;
      else if (line[i] == '#' && !in_quotes) {
        line = line.substr(0, i);
        break;
      }
    }
    line = trim(line);
    if (line.empty())
      continue;
    if (line.front() == '[') {
      if (auto ok = table_done(); !ok)
        return ok.err();
      table = nullptr;
      if (line == "[[file_sync]]") {
        in = section::file_sync;
        table = &c.file_sync.emplace_back();
        table->line = line_no;
      } else if (line == "[images]") {
        if (images_seen)
          return bad("[images] appears twice");
        images_seen = true;
        in = section::images;
      } else {
        return bad(fmt::format("unknown table `{}` (known: [images], [[file_sync]])", line));
      }
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return bad("expected `key = value`");
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    auto string_of = [&](std::string_view v) -> expected<std::string> {
      if (v.size() < 2 || v.front() != '"' || v.back() != '"')
        return bad(fmt::format("{} takes a quoted string", key));
      auto inner = v.substr(1, v.size() - 2);
      if (inner.find_first_of("\"\\") != std::string_view::npos)
        return bad("escapes and quotes inside strings are not supported");
      return std::string(inner);
    };
    auto as_string = [&] { return string_of(value); };
    auto as_bool = [&]() -> expected<bool> {
      if (value == "true")
        return true;
      if (value == "false")
        return false;
      return bad(fmt::format("{} takes true or false", key));
    };
    // A TOML integer: decimal digits, '_' allowed between them.
    auto as_count = [&]() -> expected<std::uint64_t> {
      std::string digits;
      for (std::size_t i = 0; i < value.size(); ++i)
        if (value[i] != '_' || i == 0 || i + 1 == value.size())
          digits += value[i];
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || n == 0)
        return bad(fmt::format("{} takes a positive integer", key));
      return n;
    };
    // A one-line array of quoted strings: ["a", "b"].
    auto as_strings = [&]() -> expected<std::vector<std::string>> {
      if (value.size() < 2 || value.front() != '[' || value.back() != ']')
        return bad(fmt::format("{} takes an array of quoted strings on one line, e.g. [\"localhost:5000\"]", key));
      std::vector<std::string> out;
      auto rest = trim(value.substr(1, value.size() - 2));
      while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : trim(rest.substr(comma + 1));
        if (item.empty() && rest.empty() && comma != std::string_view::npos)
          break; // a trailing comma
        auto v = string_of(item);
        if (!v)
          return v.err();
        out.push_back(std::move(*v));
      }
      return out;
    };
    if (in == section::file_sync) {
      if (key != "host" && key != "guest" && key != "mode")
        return bad(fmt::format("unknown key `{}` in [[file_sync]] (known: host, guest, mode)", key));
      // mode: TOML's octal integer (0o600) or a string ("0600").
      auto v =
        key == "mode" && value.rfind("0o", 0) == 0 ? expected<std::string>(std::string(value.substr(2))) : as_string();
      if (!v)
        return v.err();
      if (key == "host") {
        table->host = *v;
      } else if (key == "guest") {
        if (v->rfind("/root/", 0) != 0 || v->size() == 6)
          return bad(fmt::format("file_sync guest path {} is not below /root (the work disk)", *v));
        table->guest = *v;
      } else {
        unsigned mode = 0;
        auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), mode, 8);
        if (v->empty() || ec != std::errc{} || end != v->data() + v->size() || mode > 0777)
          return bad(fmt::format("file_sync mode {} is not an octal mode from 0 to 0777 (0o600 or \"0600\")", *v));
        table->mode = mode;
      }
    } else if (in == section::images) {
      if (key == "insecure_registries") {
        auto v = as_strings();
        if (!v)
          return v.err();
        for (const auto& r : *v)
          if (r.empty() || r.find_first_of("/@ ") != std::string::npos)
            return bad(fmt::format("insecure_registries: {} is not a registry (host or host:port)", quoted(r)));
        c.images.insecure_registries = std::move(*v);
      } else if (key == "max_layer_bytes" || key == "max_layer_entries" || key == "max_rootfs_bytes") {
        auto v = as_count();
        if (!v)
          return v.err();
        (key == "max_layer_bytes"     ? c.images.max_layer_bytes
         : key == "max_layer_entries" ? c.images.max_layer_entries
                                      : c.images.max_rootfs_bytes) = *v;
      } else {
        return bad(fmt::format("unknown key `{}` in [images] (known: insecure_registries, max_layer_bytes, "
                               "max_layer_entries, max_rootfs_bytes)",
                               key));
      }
    } else if (key == "bridge" || key == "subnet") {
      auto v = as_string();
      if (!v)
        return v.err();
      (key == "bridge" ? c.bridge : c.subnet) = *v;
    } else if (key == "nat" || key == "network" || key == "boot_snapshots") {
      auto v = as_bool();
      if (!v)
        return v.err();
      (key == "nat" ? c.nat : key == "network" ? c.network : c.boot_snapshots) = *v;
    } else {
      return bad(fmt::format("unknown key `{}` (known: bridge, subnet, nat, network, boot_snapshots)", key));
    }
  }
  if (auto ok = table_done(); !ok)
    return ok.err();
  return c;
}

expected<daemon_config> load_config(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return daemon_config{};
  auto text = read_file(path);
  if (!text)
    return text.err();
  return parse_config(*text, path.string());
}

} // namespace banger
