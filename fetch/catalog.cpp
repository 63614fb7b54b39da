// See catalog.hpp. nlohmann_json stays in this file.
#include "fetch/catalog.hpp"

#include <set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/sha256.hpp"
#include "common/text.hpp"
#include "fetch/http.hpp"

namespace banger::fetch {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

bool all_of(std::string_view s, bool (*ok)(char)) {
  for (char c : s)
    if (!ok(c))
      return false;
  return true;
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

expected<void> check_version(std::string_view v) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '+' || c == '~' || c == ':' || c == '-';
  };
  if (v.empty() || v.size() > 128 || !all_of(v, +ok))
    return make_error(errc::bad_request, "version must be 1-128 characters of [A-Za-z0-9._+~:-]");
  return {};
}

expected<void> check_arch(std::string_view a) {
  auto ok = [](char c) { return lower_alnum(c) || c == '_'; };
  if (a.empty() || a.size() > 16 || !all_of(a, +ok))
    return make_error(errc::bad_request, "arch must be 1-16 characters of [a-z0-9_], e.g. \"x86_64\"");
  return {};
}

// Checks every field but the url, which the caller resolves or keeps as written.
expected<void> check_fields(const catalog_entry& e) {
  if (auto ok = check_kernel_name(e.name); !ok)
    return ok;
  if (auto ok = check_version(e.version); !ok)
    return ok;
  if (!is_sha256_hex(e.sha256))
    return make_error(errc::bad_request, "sha256 must be 64 lowercase hex digits");
  if (e.size == 0 || e.size > max_bundle_bytes)
    return make_error(errc::bad_request, fmt::format("size must be between 1 and {} bytes", max_bundle_bytes));
  if (auto ok = check_arch(e.arch); !ok)
    return ok;
  if (e.url.empty() || e.url.size() > 2048)
    return make_error(errc::bad_request, "url must be 1-2048 characters");
  return {};
}

expected<std::string> get_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end())
    return make_error(errc::bad_request, fmt::format("{} is missing", key));
  if (!it->is_string())
    return make_error(errc::bad_request, fmt::format("{} must be a string", key));
  return it->get<std::string>();
}

expected<catalog_entry> parse_entry(const json& j, const std::string& catalog_url) {
  if (!j.is_object())
    return make_error(errc::bad_request, "an entry must be an object");
  catalog_entry e;
  for (auto [key, field] : {std::pair{"name", &e.name}, std::pair{"version", &e.version}, std::pair{"url", &e.url},
                            std::pair{"sha256", &e.sha256}, std::pair{"arch", &e.arch}}) {
    auto v = get_string(j, key);
    if (!v)
      return std::move(v).err();
    *field = std::move(*v);
  }
  auto size = j.find("size");
  if (size == j.end())
    return make_error(errc::bad_request, "size is missing");
  if (!size->is_number_unsigned())
    return make_error(errc::bad_request, "size must be a positive whole number of bytes");
  e.size = size->get<std::uint64_t>();
  if (auto ok = check_fields(e); !ok)
    return std::move(ok).err();
  auto resolved = resolve_http_url(catalog_url, e.url);
  if (!resolved)
    return std::move(resolved).err();
  e.url = std::move(*resolved);
  return e;
}

ordered_json entry_object(const catalog_entry& e) {
  ordered_json o;
  o["name"] = e.name;
  o["version"] = e.version;
  o["url"] = e.url;
  o["sha256"] = e.sha256;
  o["size"] = e.size;
  o["arch"] = e.arch;
  return o;
}

expected<void> check_for_export(const catalog_entry& e) {
  if (auto ok = check_fields(e); !ok)
    return make_error(errc::bad_request, fmt::format("catalog entry {}: {}", quoted(e.name), ok.err().message));
  return {};
}

} // namespace

expected<void> check_kernel_name(std::string_view name) {
  auto ok = [](char c) { return lower_alnum(c) || c == '-'; };
  if (name.empty() || name.size() > 63 || !all_of(name, +ok) || name.front() == '-' || name.back() == '-')
    return make_error(errc::bad_request,
                      fmt::format("kernel name {} must be 1-63 characters of [a-z0-9-], not starting or ending "
                                  "with '-'",
                                  quoted(name)));
  return {};
}

expected<catalog> parse_catalog(std::string_view text, std::string_view catalog_url) {
  auto base = check_http_url(catalog_url);
  if (!base)
    return std::move(base).err();
  auto bad = [&](const std::string& what) {
    return make_error(errc::bad_request, fmt::format("catalog {}: {}", *base, what));
  };
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return bad("not valid JSON; check the catalog URL");
  if (!doc.is_object())
    return bad("the document must be a JSON object");
  auto schema = doc.find("schema");
  if (schema == doc.end() || !schema->is_number_unsigned())
    return bad("\"schema\" is missing or not a number");
  if (schema->get<std::uint64_t>() != catalog_schema)
    return bad(fmt::format("schema {} is not the schema {} this banger reads; upgrade banger",
                           schema->get<std::uint64_t>(), catalog_schema));
  auto kernels = doc.find("kernels");
  if (kernels == doc.end() || !kernels->is_array())
    return bad("\"kernels\" is missing or not an array");
  if (kernels->size() > max_catalog_kernels)
    return bad(fmt::format("more than {} kernels", max_catalog_kernels));

  catalog c;
  c.url = *base;
  std::set<std::pair<std::string, std::string>> seen;
  for (std::size_t i = 0; i < kernels->size(); ++i) {
    const json& j = (*kernels)[i];
    auto e = parse_entry(j, *base);
    if (!e) {
      std::string label = fmt::format("kernels[{}]", i);
      if (j.is_object() && j.contains("name") && j["name"].is_string())
        label += fmt::format(" ({})", quoted(j["name"].get<std::string>()));
      return bad(fmt::format("{}: {}", label, e.err().message));
    }
    if (!seen.emplace(e->name, e->arch).second)
      return bad(fmt::format("kernels[{}]: {} for {} is listed twice", i, quoted(e->name), e->arch));
    c.kernels.push_back(std::move(*e));
  }
  return c;
}

expected<catalog_entry> catalog::find(std::string_view name, std::string_view arch) const {
  std::vector<std::string> here, elsewhere;
  for (const auto& k : kernels) {
    if (k.arch == arch) {
      if (k.name == name)
        return k;
      here.push_back(k.name);
    } else if (k.name == name) {
      elsewhere.push_back(k.arch);
    }
  }
  std::string msg = fmt::format("catalog {} has no kernel {} for {}", url, quoted(name), arch);
  if (!elsewhere.empty())
    msg += fmt::format(" (only for {})", fmt::join(elsewhere, ", "));
  if (here.empty())
    msg += fmt::format("; it lists no {} kernels", arch);
  else
    msg += fmt::format("; it lists: {}", fmt::join(here, ", "));
  return make_error(errc::not_found, std::move(msg));
}

expected<std::string> catalog_entry_json(const catalog_entry& e) {
  if (auto ok = check_for_export(e); !ok)
    return std::move(ok).err();
  return entry_object(e).dump(2) + "\n";
}

expected<std::string> catalog_json(const std::vector<catalog_entry>& entries) {
  ordered_json doc;
  doc["schema"] = catalog_schema;
  doc["kernels"] = ordered_json::array();
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& e : entries) {
    if (auto ok = check_for_export(e); !ok)
      return std::move(ok).err();
    if (!seen.emplace(e.name, e.arch).second)
      return make_error(errc::bad_request,
                        fmt::format("catalog entry {} for {} is listed twice", quoted(e.name), e.arch));
    doc["kernels"].push_back(entry_object(e));
  }
  return doc.dump(2) + "\n";
}

} // namespace banger::fetch
