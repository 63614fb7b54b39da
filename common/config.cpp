// See config.hpp.
#include "common/config.hpp"

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
    if (key == "bridge" || key == "subnet") {
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
