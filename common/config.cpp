// See config.hpp.
#include "common/config.hpp"

#include <charconv>

#include <fmt/core.h>

#include "common/process.hpp"

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

expected<daemon_config> parse_config(std::string_view text, std::string_view origin) {
  daemon_config c;
  std::size_t line_no = 0;
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
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"')
        quoted = !quoted;
      else if (line[i] == '#' && !quoted) {
        line = line.substr(0, i);
        break;
      }
    }
    line = trim(line);
    if (line.empty())
      continue;
    if (line.front() == '[') {
      if (line != "[[file_sync]]")
        return bad(fmt::format("unknown table `{}` (known: [[file_sync]])", line));
      if (auto ok = table_done(); !ok)
        return ok.err();
      table = &c.file_sync.emplace_back();
      table->line = line_no;
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return bad("expected `key = value`");
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    auto as_string = [&]() -> expected<std::string> {
      if (value.size() < 2 || value.front() != '"' || value.back() != '"')
        return bad(fmt::format("{} takes a quoted string", key));
      auto inner = value.substr(1, value.size() - 2);
      if (inner.find_first_of("\"\\") != std::string_view::npos)
        return bad("escapes and quotes inside strings are not supported");
      return std::string(inner);
    };
    auto as_bool = [&]() -> expected<bool> {
      if (value == "true")
        return true;
      if (value == "false")
        return false;
      return bad(fmt::format("{} takes true or false", key));
    };
    if (table) {
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
