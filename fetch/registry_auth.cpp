// See registry_auth.hpp.
#include "fetch/registry_auth.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/text.hpp"
#include "fetch/http.hpp"

namespace banger::fetch {

namespace {

bool tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return s;
}

void skip_space(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
    ++i;
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

} // namespace

expected<auth_challenge> parse_auth_challenge(std::string_view header) {
  auto bad = [&](const std::string& why) {
    return make_error(errc::bad_request, fmt::format("WWW-Authenticate {}: {}", quoted(header), why));
  };
  std::size_t i = 0;
  skip_space(header, i);
  auto start = i;
  while (i < header.size() && tchar(header[i]))
    ++i;
  if (i == start)
    return bad("no authentication scheme");
  auth_challenge c;
  c.scheme = lower(std::string(header.substr(start, i - start)));
  if (i < header.size() && header[i] != ' ' && header[i] != '\t')
    return bad("the scheme is not a token");
  for (;;) {
    skip_space(header, i);
    if (i >= header.size())
      break;
    auto name_start = i;
    while (i < header.size() && tchar(header[i]))
      ++i;
    if (i == name_start)
      return bad(fmt::format("a parameter name was expected at byte {}", i));
    auto name = lower(std::string(header.substr(name_start, i - name_start)));
    skip_space(header, i);
    if (i >= header.size() || header[i] != '=')
      return bad(fmt::format("parameter {} has no value", quoted(name)));
    ++i;
    skip_space(header, i);
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      bool closed = false;
      while (i < header.size()) {
        char ch = header[i++];
        if (ch == '"') {
          closed = true;
          break;
        }
        if (ch == '\\') {
          if (i >= header.size())
            break;
          ch = header[i++];
        }
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t')
          return bad(fmt::format("parameter {} holds a control character", quoted(name)));
        value.push_back(ch);
      }
      if (!closed)
        return bad(fmt::format("parameter {}'s quoted value is not closed", quoted(name)));
    } else {
      auto v = i;
      while (i < header.size() && tchar(header[i]))
        ++i;
      if (i == v)
        return bad(fmt::format("parameter {} has an empty value", quoted(name)));
      value = std::string(header.substr(v, i - v));
    }
    if (!c.params.emplace(name, value).second)
      return bad(fmt::format("parameter {} is given twice", quoted(name)));
    skip_space(header, i);
    if (i >= header.size())
      break;
    if (header[i] != ',')
      return bad(fmt::format("a ',' was expected at byte {}", i));
    ++i;
  }
  return c;
}

expected<std::string> token_url(const auth_challenge& c, bool registry_is_https, std::optional<std::string> scope) {
  if (c.scheme != "bearer")
    return make_error(errc::bad_request, fmt::format("a {} challenge has no token to ask for", quoted(c.scheme)));
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty())
    return make_error(errc::bad_request, "the registry's Bearer challenge names no realm to get a token from");
  auto url = check_http_url(realm->second);
  if (!url)
    return make_error(errc::bad_request,
                      fmt::format("the registry's token realm {}: {}", quoted(realm->second), url.err().message));
  if (registry_is_https && url->rfind("https://", 0) != 0)
    return make_error(errc::bad_request, fmt::format("the registry is https but its token realm {} is not: "
                                                     "credentials are not sent in clear",
                                                     quoted(*url)));
  std::string q;
  if (auto s = c.params.find("service"); s != c.params.end())
    q += "service=" + url_escape(s->second);
  std::string sc = scope ? *scope : (c.params.count("scope") ? c.params.at("scope") : std::string());
  if (!sc.empty())
    q += (q.empty() ? "" : "&") + std::string("scope=") + url_escape(sc);
  if (q.empty())
    return *url;
  return *url + (url->find('?') == std::string::npos ? "?" : "&") + q;
}

expected<std::optional<credentials>> docker_config_credentials(std::string_view config_json,
                                                               std::string_view registry) {
  using nlohmann::json;
  auto bad = [](const std::string& why) {
    return make_error(errc::bad_request, fmt::format("docker config.json: {}", why));
  };
  json doc = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return bad("not a JSON object");
  std::optional<credentials> none;
  auto auths = doc.find("auths");
  if (auths == doc.end())
    return none;
  if (!auths->is_object())
    return bad("\"auths\" is not an object");
  std::string reg(registry);
  std::vector<std::string> keys{reg, "https://" + reg, "http://" + reg, "https://" + reg + "/v1/",
                                "https://" + reg + "/v2/"};
  if (reg == "docker.io")
    for (const char* k : {"https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"})
      keys.emplace_back(k);
  for (const auto& k : keys) {
    auto it = auths->find(k);
    if (it == auths->end())
      continue;
    if (!it->is_object())
      return bad(fmt::format("auths[{}] is not an object", quoted(k)));
    auto field = [&](const char* name) -> std::optional<std::string> {
      auto f = it->find(name);
      if (f == it->end() || !f->is_string())
        return std::nullopt;
      return f->get<std::string>();
    };
    if (auto a = field("auth"); a && !a->empty()) {
      auto decoded = base64_decode(*a);
      auto colon = decoded ? decoded->find(':') : std::string::npos;
      if (!decoded || colon == std::string::npos)
        return bad(fmt::format("auths[{}].auth is not base64 of \"user:password\"", quoted(k)));
      return std::optional<credentials>(credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
    }
    auto user = field("username"), pass = field("password");
    if (user && pass)
      return std::optional<credentials>(credentials{*user, *pass});
    return none; // an entry kept by a credential helper: not read here
  }
  return none;
}

} // namespace banger::fetch
