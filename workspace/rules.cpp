#include "workspace/rules.hpp"

#include <fmt/format.h>

#include "common/text.hpp"

namespace banger::workspace {

namespace {

/// Calls `each` with every '/'-separated component of `path` (which has no leading '/').
template <class F>
expected<void> components(std::string_view path, F each) {
  std::size_t at = 0;
  while (true) {
    auto end = path.find('/', at);
    auto c = path.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (auto ok = each(c); !ok)
      return ok;
    if (end == std::string_view::npos)
      return {};
    at = end + 1;
  }
}

expected<void> common_component(std::string_view c, std::string_view path) {
  if (c.empty())
    return make_error(errc::bad_request, fmt::format("{} has an empty component", quoted(path)));
  if (c == "." || c == "..")
    return make_error(errc::bad_request, fmt::format("{} has a '{}' component", quoted(path), c));
  if (c.size() > 255)
    return make_error(errc::bad_request, fmt::format("{} has a component over 255 bytes", quoted(path, 80)));
  if (c.find('\0') != std::string_view::npos)
    return make_error(errc::bad_request, fmt::format("{} holds a NUL byte", quoted(path)));
  return {};
}

} // namespace

std::string default_guest_path(const std::filesystem::path& top) {
  auto name = top.filename().string();
  if (name.empty() || !validate_guest_path("/root/" + name))
    name = "workspace";
  return "/root/" + name;
}

expected<void> validate_guest_path(std::string_view path) {
  if (path.size() > 1024)
    return make_error(errc::bad_request, fmt::format("guest path {} is over 1024 bytes", quoted(path, 80)));
  if (path.rfind("/root/", 0) != 0 || path.size() == 6)
    return make_error(errc::bad_request,
                      fmt::format("guest path {} is not below /root: a workspace lands on the VM's work disk, "
                                  "e.g. /root/src",
                                  quoted(path)));
  for (unsigned char ch : path)
    if (ch < 0x20 || ch == 0x7f)
      return make_error(errc::bad_request, fmt::format("guest path {} holds a control character", quoted(path)));
  return components(path.substr(1), [&](std::string_view c) { return common_component(c, path); });
}

expected<void> validate_entry_path(std::string_view path) {
  if (path.empty())
    return make_error(errc::bad_request, "an entry with an empty path");
  if (path.size() > 4095)
    return make_error(errc::bad_request, fmt::format("entry path {} is over 4095 bytes", quoted(path, 80)));
  if (path.front() == '/')
    return make_error(errc::bad_request, fmt::format("entry path {} is absolute", quoted(path)));
  return components(path, [&](std::string_view c) -> expected<void> {
    if (auto ok = common_component(c, path); !ok)
      return ok;
    if (c == ".git")
      return make_error(errc::bad_request,
                        fmt::format("entry path {} is inside a .git directory (banger makes the workspace's "
                                    "repository; it is never shipped)",
                                    quoted(path)));
    return {};
  });
}

} // namespace banger::workspace
