// See oci_reference.hpp.
#include "fetch/oci_reference.hpp"

#include <fmt/format.h>

#include <vector>

#include "common/text.hpp"

namespace banger::fetch {

namespace {

constexpr std::size_t max_name = 255; // registry + '/' + repository, as distribution caps it

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

/// A repository component: lowercase alphanumerics separated by one '.', one or two '_', or
/// any number of '-'.
bool path_component(std::string_view s) {
  if (s.empty() || !lower_alnum(s.front()) || !lower_alnum(s.back()))
    return false;
  for (std::size_t i = 0; i < s.size();) {
    if (lower_alnum(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && !lower_alnum(s[j]))
      ++j;
    auto sep = s.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok)
      return false;
    i = j;
  }
  return true;
}

/// A registry: host[:port], the host being dot-separated labels (letters, digits, inner '-')
/// or a bracketed IPv6 address.
bool registry_name(std::string_view s) {
  std::string_view host = s, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close == 1)
      return false;
    auto inner = s.substr(1, close - 1);
    if (inner.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
      return false;
    auto rest = s.substr(close + 1);
    if (rest.empty())
      return true;
    if (rest.front() != ':')
      return false;
    port = rest.substr(1);
    host = {};
  } else if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (port.empty())
      return false;
  }
  if (!port.empty() || s.back() == ':') {
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
      return false;
  }
  if (s.front() == '[')
    return true;
  if (host.empty())
    return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    auto dot = host.find('.', start);
    auto label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || !alnum(label.front()) || !alnum(label.back()))
      return false;
    for (char c : label)
      if (!alnum(c) && c != '-')
        return false;
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  return true;
}

bool tag_ok(std::string_view t) {
  if (t.empty() || t.size() > 128)
    return false;
  auto word = [](char c) { return alnum(c) || c == '_'; };
  if (!word(t.front()))
    return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-')
      return false;
  return true;
}

} // namespace

std::string oci_reference::api_host() const { return registry == "docker.io" ? "registry-1.docker.io" : registry; }

std::string oci_reference::str() const {
  std::string out = registry + "/" + repository;
  if (!tag.empty())
    out += ":" + tag;
  if (!digest.empty())
    out += "@" + digest;
  return out;
}

expected<oci_reference> parse_oci_reference(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return make_error(errc::bad_request, fmt::format("image reference {}: {}", quoted(text), why));
  };
  if (text.empty())
    return bad("empty");
  if (text.size() > max_name + 1 + 128 + 1 + 71)
    return bad("too long");
  for (char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return bad("holds a space, a control character or a non-ASCII byte");
  oci_reference r;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    auto digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    auto colon = digest.find(':');
    if (colon == std::string_view::npos)
      return bad("the digest must be ALGORITHM:HEX, e.g. sha256:<64 hex digits>");
    if (digest.substr(0, colon) != "sha256")
      return bad(fmt::format("digest algorithm {} is not sha256 (the only one banger verifies)",
                             quoted(digest.substr(0, colon))));
    auto hex = digest.substr(colon + 1);
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos)
      return bad("a sha256 digest is 64 lowercase hex digits");
    r.digest = std::string(digest);
  }
  // The tag follows the last ':' after the last '/' (a ':' before it is a registry's port).
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    auto tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!tag_ok(tag))
      return bad(fmt::format("tag {} must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'", quoted(tag)));
    r.tag = std::string(tag);
  }
  if (rest.empty())
    return bad("no repository");
  std::vector<std::string_view> comps;
  for (std::size_t start = 0;;) {
    auto s = rest.find('/', start);
    comps.push_back(rest.substr(start, s == std::string_view::npos ? std::string_view::npos : s - start));
    if (s == std::string_view::npos)
      break;
    start = s + 1;
  }
  auto first = comps.front();
  bool has_registry =
    comps.size() > 1 && (first.find_first_of(".:[") != std::string_view::npos || first == "localhost" ||
                         first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos);
  if (has_registry) {
    if (!registry_name(first))
      return bad(fmt::format("registry {} is not HOST[:PORT]", quoted(first)));
    r.registry = std::string(first);
    comps.erase(comps.begin());
    if (r.registry == "index.docker.io" || r.registry == "registry-1.docker.io")
      r.registry = "docker.io";
  } else {
    r.registry = "docker.io";
  }
  for (auto c : comps) {
    if (c.empty())
      return bad("an empty path component ('//' or a trailing '/')");
    if (c.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos)
      return bad("repository names are lowercase");
    if (!path_component(c))
      return bad(fmt::format("repository component {} must be lowercase letters and digits, separated by '.', "
                             "'_', '__' or dashes",
                             quoted(c)));
  }
  for (std::size_t i = 0; i < comps.size(); ++i)
    r.repository += (i ? "/" : "") + std::string(comps[i]);
  if (r.registry == "docker.io" && comps.size() == 1)
    r.repository = "library/" + r.repository;
  if (r.registry.size() + 1 + r.repository.size() > max_name)
    return bad(fmt::format("the name is over {} characters", max_name));
  if (r.tag.empty() && r.digest.empty())
    r.tag = "latest";
  return r;
}

} // namespace banger::fetch
