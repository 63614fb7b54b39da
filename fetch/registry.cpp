// See registry.hpp. Documents are parsed with nlohmann::json's non-throwing parse and every
// field is checked before use: a registry's reply is outside input.
#include "fetch/registry.hpp"

#include <algorithm>
#include <cerrno>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"

namespace banger::fetch {

namespace {

using json = nlohmann::json;

constexpr std::string_view schema1_types[] = {"application/vnd.docker.distribution.manifest.v1+json",
                                              "application/vnd.docker.distribution.manifest.v1+prettyjws"};

bool is_index_type(std::string_view t) { return t == media_type::oci_index || t == media_type::docker_list; }
bool is_manifest_type(std::string_view t) { return t == media_type::oci_manifest || t == media_type::docker_manifest; }

std::string accept_header() {
  return fmt::format("Accept: {}, {}, {}, {}", media_type::oci_manifest, media_type::oci_index,
                     media_type::docker_manifest, media_type::docker_list);
}

expected<void> check_digest_text(std::string_view d, std::string_view what) {
  if (!d.starts_with("sha256:") || !is_sha256_hex(d.substr(7)))
    return make_error(errc::bad_request,
                      fmt::format("{}: digest {} is not sha256:<64 lowercase hex digits>", what, quoted(d)));
  return {};
}

/// A descriptor object: mediaType, digest and size, each of the right type.
expected<blob_descriptor> descriptor_of(const json& j, std::uint64_t max_size, std::string_view what) {
  if (!j.is_object())
    return make_error(errc::bad_request, fmt::format("{} is not an object", what));
  auto mt = j.find("mediaType");
  auto dg = j.find("digest");
  auto sz = j.find("size");
  if (mt == j.end() || !mt->is_string())
    return make_error(errc::bad_request, fmt::format("{} has no mediaType string", what));
  if (dg == j.end() || !dg->is_string())
    return make_error(errc::bad_request, fmt::format("{} has no digest string", what));
  if (sz == j.end() || !sz->is_number_unsigned())
    return make_error(errc::bad_request, fmt::format("{} has no size (a non-negative integer)", what));
  blob_descriptor d{mt->get<std::string>(), dg->get<std::string>(), sz->get<std::uint64_t>()};
  if (auto c = check_digest_text(d.digest, what); !c)
    return c.err();
  if (d.size > max_size)
    return make_error(errc::bad_request,
                      fmt::format("{} declares {} bytes, over the cap of {}", what, d.size, max_size));
  return d;
}

expected<json> parse_object(std::string_view body, std::string_view what) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::bad_request, fmt::format("{} is not a JSON object", what));
  return j;
}

/// The document's own mediaType field when it has one, else the Content-Type it came with.
expected<std::string> effective_type(const json& j, std::string_view content_type, std::string_view what) {
  auto mt = j.find("mediaType");
  if (mt != j.end()) {
    if (!mt->is_string())
      return make_error(errc::bad_request, fmt::format("{}: mediaType is not a string", what));
    return mt->get<std::string>();
  }
  auto sv = j.find("schemaVersion");
  if (sv != j.end() && sv->is_number_integer() && sv->get<long long>() == 1)
    return std::string(schema1_types[0]);
  // An OCI document may omit mediaType: the Content-Type names it when it is a known one, else
  // its shape says which it is.
  if (is_manifest_type(content_type) || content_type == media_type::oci_index ||
      content_type == media_type::docker_list)
    return std::string(content_type);
  if (j.contains("manifests"))
    return std::string(media_type::oci_index);
  if (j.contains("layers") || j.contains("config"))
    return std::string(media_type::oci_manifest);
  return std::string(content_type);
}

error schema1_refusal(std::string_view what) {
  return make_error(errc::bad_request,
                    fmt::format("{} is a Docker schema 1 manifest, which banger does not pull (it is deprecated and "
                                "unverifiable); push the image again with a current Docker, skopeo or buildah",
                                what));
}

} // namespace

std::string platform_spec::str() const {
  return variant.empty() ? fmt::format("{}/{}", os, architecture) : fmt::format("{}/{}/{}", os, architecture, variant);
}

expected<platform_spec> parse_platform(std::string_view text) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  auto ok = [](const std::string& p) {
    return !p.empty() && p.size() <= 32 &&
           p.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
  };
  if (parts.size() < 2 || parts.size() > 3 || !ok(parts[0]) || !ok(parts[1]) || (parts.size() == 3 && !ok(parts[2])))
    return make_error(
      errc::bad_request,
      fmt::format("platform {} is not OS/ARCH[/VARIANT] (e.g. linux/amd64, linux/arm64/v8)", quoted(text)));
  platform_spec p{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
  return p;
}

expected<layer_compression> compression_of(const blob_descriptor& d) {
  const auto& t = d.media_type;
  if (t == "application/vnd.oci.image.layer.v1.tar")
    return layer_compression::none;
  if (t == "application/vnd.oci.image.layer.v1.tar+gzip" || t == "application/vnd.docker.image.rootfs.diff.tar.gzip")
    return layer_compression::gzip;
  if (t == "application/vnd.oci.image.layer.v1.tar+zstd")
    return layer_compression::zstd;
  if (t.find("nondistributable") != std::string::npos || t.find("foreign") != std::string::npos)
    return make_error(errc::bad_request,
                      fmt::format("layer {} is a foreign layer ({}), whose content is not in the registry; banger "
                                  "pulls only layers the registry serves",
                                  d.digest, t));
  return make_error(errc::bad_request, fmt::format("layer {} has media type {}, which is not a tar layer banger reads "
                                                   "(plain, gzip or zstd)",
                                                   d.digest, quoted(t)));
}

expected<resolved_image> parse_image_manifest(std::string_view body, std::string_view content_type,
                                              const registry_limits& limits, std::string_view what) {
  auto j = parse_object(body, what);
  if (!j)
    return std::move(j).err();
  auto type = effective_type(*j, content_type, what);
  if (!type)
    return std::move(type).err();
  for (auto s1 : schema1_types)
    if (*type == s1)
      return schema1_refusal(what);
  if (!is_manifest_type(*type))
    return make_error(errc::bad_request,
                      fmt::format("{} has media type {}, not an image manifest", what, quoted(*type)));
  auto sv = j->find("schemaVersion");
  if (sv == j->end() || !sv->is_number_integer() || sv->get<long long>() != 2)
    return make_error(errc::bad_request, fmt::format("{}: schemaVersion is not 2", what));
  resolved_image out;
  out.media_type = *type;
  auto cfg = j->find("config");
  if (cfg == j->end())
    return make_error(errc::bad_request, fmt::format("{} has no config", what));
  auto c = descriptor_of(*cfg, limits.max_config_bytes, fmt::format("{}: config", what));
  if (!c)
    return std::move(c).err();
  if (c->media_type != media_type::oci_config && c->media_type != media_type::docker_config)
    return make_error(errc::bad_request, fmt::format("{}: config has media type {}, not an image config (is this an "
                                                     "artifact rather than an image?)",
                                                     what, quoted(c->media_type)));
  out.config = std::move(*c);
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array())
    return make_error(errc::bad_request, fmt::format("{} has no layers array", what));
  if (layers->size() > limits.max_layers)
    return make_error(errc::bad_request, fmt::format("{} has {} layers, over the cap of {} (images.max_layers)", what,
                                                     layers->size(), limits.max_layers));
  for (std::size_t i = 0; i < layers->size(); ++i) {
    auto d = descriptor_of((*layers)[i], limits.max_layer_bytes, fmt::format("{}: layer {}", what, i + 1));
    if (!d)
      return std::move(d).err();
    if (auto comp = compression_of(*d); !comp)
      return std::move(comp).err();
    out.layers.push_back(std::move(*d));
  }
  return out;
}

expected<std::string> pick_platform(std::string_view index_body, const platform_spec& want,
                                    const registry_limits& limits, std::string_view what, std::string* picked) {
  auto j = parse_object(index_body, what);
  if (!j)
    return std::move(j).err();
  auto list = j->find("manifests");
  if (list == j->end() || !list->is_array())
    return make_error(errc::bad_request, fmt::format("{} has no manifests array", what));
  if (list->size() > limits.max_index_entries)
    return make_error(errc::bad_request, fmt::format("{} lists {} manifests, over the cap of {}", what, list->size(),
                                                     limits.max_index_entries));
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto& e = (*list)[i];
    auto d = descriptor_of(e, limits.max_manifest_bytes, fmt::format("{}: entry {}", what, i + 1));
    if (!d)
      return std::move(d).err();
    if (!is_manifest_type(d->media_type))
      continue; // attestations, nested indexes: not an image for a platform
    auto p = e.find("platform");
    if (p == e.end() || !p->is_object())
      continue;
    auto field = [&](const char* name) {
      auto f = p->find(name);
      return f != p->end() && f->is_string() ? f->get<std::string>() : std::string();
    };
    platform_spec have{field("os"), field("architecture"), field("variant")};
    seen.push_back(have.str());
    if (have.os == want.os && have.architecture == want.architecture &&
        (want.variant.empty() || have.variant == want.variant)) {
      if (picked != nullptr)
        *picked = have.str();
      return d->digest;
    }
  }
  return make_error(errc::not_found,
                    fmt::format("{} has no image for {}; it has: {}; pick one with --platform", what, want.str(),
                                seen.empty() ? std::string("none") : fmt::format("{}", fmt::join(seen, ", "))));
}

registry_client::registry_client(oci_reference ref, registry_options opts)
  : ref_(std::move(ref)), opts_(std::move(opts)) {}

std::string registry_client::base() const {
  return fmt::format("{}://{}/v2/", opts_.plain_http ? "http" : "https", ref_.api_host());
}

error registry_client::blob_mismatch(const blob_descriptor& d, std::uint64_t got_size, const std::string& got_digest,
                                     std::string_view outcome) const {
  return make_error(errc::operation_failed,
                    fmt::format("blob {} from {} arrived as {} bytes hashing to {}, but the manifest names {} bytes "
                                "with that digest; {}",
                                d.digest, ref_.registry, got_size, got_digest, d.size, outcome));
}

error registry_client::http_error(const http_reply& r, const std::string& what) const {
  // The distribution spec's error body: {"errors": [{"code": ..., "message": ...}]}.
  std::string detail;
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array())
    for (const auto& e : j["errors"]) {
      if (!e.is_object())
        continue;
      auto code = e.find("code");
      auto msg = e.find("message");
      if (code != e.end() && code->is_string())
        detail += (detail.empty() ? "" : "; ") + quoted(code->get<std::string>(), 64);
      if (msg != e.end() && msg->is_string())
        detail += ": " + quoted(msg->get<std::string>(), 200);
    }
  auto suffix = detail.empty() ? std::string() : fmt::format(" ({})", detail);
  if (r.status == 401 || r.status == 403)
    return make_error(errc::unauthorized,
                      fmt::format("registry {} refused access to {} (HTTP {}){}; give credentials with --username and "
                                  "--password-stdin, or log in with `docker login` / `skopeo login`",
                                  ref_.registry, what, r.status, suffix));
  if (r.status == 404)
    return make_error(errc::not_found, fmt::format("registry {} has no {} (HTTP 404){}", ref_.registry, what, suffix));
  if (r.status == 429 || r.status >= 500)
    return make_error(errc::unavailable, fmt::format("registry {} failed with HTTP {} for {}{}; try again later",
                                                     ref_.registry, r.status, what, suffix));
  return make_error(errc::operation_failed,
                    fmt::format("registry {} answered HTTP {} for {}{}", ref_.registry, r.status, what, suffix));
}

expected<void> registry_client::authenticate(const http_reply& r) {
  auto h = r.headers.find("www-authenticate");
  if (h == r.headers.end())
    return make_error(errc::unauthorized,
                      fmt::format("registry {} answered 401 without a WWW-Authenticate challenge", ref_.registry));
  auto c = parse_auth_challenge(h->second);
  if (!c)
    return make_error(c.err().code, fmt::format("registry {}: {}", ref_.registry, c.err().message));
  auto basic = [this] {
    return "Authorization: Basic " + base64_encode(opts_.creds->username + ":" + opts_.creds->password);
  };
  if (c->scheme == "basic") {
    if (!opts_.creds)
      return make_error(errc::unauthorized,
                        fmt::format("registry {} needs a user name and password; give them with --username and "
                                    "--password-stdin, or log in with `docker login` / `skopeo login`",
                                    ref_.registry));
    authorization_ = basic();
    return {};
  }
  if (c->scheme != "bearer")
    return make_error(errc::unauthorized,
                      fmt::format("registry {} asks for {} authentication, which banger does not speak (Basic and "
                                  "Bearer only)",
                                  ref_.registry, quoted(c->scheme, 32)));
  std::string scope = fmt::format("repository:{}:pull", ref_.repository);
  if (auto t = tokens_.find(scope); t != tokens_.end() && authorization_ != "Authorization: Bearer " + t->second) {
    authorization_ = "Authorization: Bearer " + t->second;
    return {};
  }
  auto url = token_url(*c, !opts_.plain_http, scope);
  if (!url)
    return make_error(url.err().code, fmt::format("registry {}: {}", ref_.registry, url.err().message));
  http_request rq;
  rq.url = *url;
  rq.max_bytes = 1 << 20;
  rq.timeout = opts_.timeout;
  rq.deadline = std::chrono::seconds(120);
  if (opts_.creds)
    rq.headers.push_back(basic());
  auto tr = http_exchange(rq);
  if (!tr)
    return make_error(tr.err().code, fmt::format("token for {}: {}", ref_.registry, tr.err().message));
  if (tr->status != 200)
    return make_error(tr->status == 401 || tr->status == 403 ? errc::unauthorized : errc::operation_failed,
                      fmt::format("the token server for {} answered HTTP {}{}", ref_.registry, tr->status,
                                  tr->status == 401 ? "; the credentials were refused" : ""));
  auto j = json::parse(tr->body, nullptr, false);
  std::string token;
  if (j.is_object())
    for (const char* field : {"token", "access_token"})
      if (auto f = j.find(field); f != j.end() && f->is_string() && !f->get<std::string>().empty()) {
        token = f->get<std::string>();
        break;
      }
  // The token goes into a header line: printable ASCII only, and a sane length.
  bool ok = !token.empty() && token.size() <= 16384 &&
            std::all_of(token.begin(), token.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
  if (!ok)
    return make_error(errc::operation_failed,
                      fmt::format("the token server for {} sent no usable token (a JSON object with a printable "
                                  "\"token\" or \"access_token\")",
                                  ref_.registry));
  tokens_[scope] = token;
  authorization_ = "Authorization: Bearer " + token;
  return {};
}

expected<http_reply> registry_client::get(const std::string& path, std::vector<std::string> headers, http_request rq) {
  rq.url = base() + path;
  rq.timeout = opts_.timeout;
  for (int attempt = 0;; ++attempt) {
    rq.headers = headers;
    if (authorization_)
      rq.headers.push_back(*authorization_);
    auto r = http_exchange(rq);
    if (!r || r->status != 401 || attempt == 2)
      return r;
    // A 401 body never reached the file or the hasher; asking again is safe.
    auto before = authorization_;
    if (auto a = authenticate(*r); !a)
      return std::move(a).err();
    if (authorization_ == before)
      return r; // the same credentials again: refused
  }
}

expected<std::pair<std::string, std::string>> registry_client::fetch_manifest(const std::string& ref_part,
                                                                              std::string_view expect_digest) {
  auto what = fmt::format("manifest {}:{}", ref_.repository, ref_part);
  http_request rq;
  rq.max_bytes = opts_.limits.max_manifest_bytes;
  rq.deadline = std::chrono::seconds(300);
  auto r = get(fmt::format("{}/manifests/{}", ref_.repository, ref_part), {accept_header()}, std::move(rq));
  if (!r)
    return std::move(r).err();
  if (r->status != 200)
    return http_error(*r, what);
  auto digest = "sha256:" + sha256_hex(r->body);
  if (!expect_digest.empty() && digest != expect_digest)
    return make_error(errc::operation_failed,
                      fmt::format("{} from {} has digest {}, not the {} asked for; nothing was used", what,
                                  ref_.registry, digest, expect_digest));
  if (auto h = r->headers.find("docker-content-digest");
      h != r->headers.end() && h->second.starts_with("sha256:") && h->second != digest)
    return make_error(errc::operation_failed,
                      fmt::format("{} from {} has digest {} but the registry says {}; nothing was used", what,
                                  ref_.registry, digest, quoted(h->second, 80)));
  auto ct = r->headers.count("content-type") ? r->headers["content-type"] : std::string();
  if (auto semi = ct.find(';'); semi != std::string::npos)
    ct.resize(semi);
  return std::pair{std::move(r->body), ct + "\n" + digest};
}

expected<resolved_image> registry_client::resolve(const platform_spec& platform) {
  std::string ref_part = ref_.digest.empty() ? ref_.tag : ref_.digest;
  auto first = fetch_manifest(ref_part, ref_.digest);
  if (!first)
    return std::move(first).err();
  auto nl = first->second.find('\n');
  std::string content_type = first->second.substr(0, nl), digest = first->second.substr(nl + 1);
  auto what = fmt::format("manifest {}:{} on {}", ref_.repository, ref_part, ref_.registry);
  auto j = parse_object(first->first, what);
  if (!j)
    return std::move(j).err();
  auto type = effective_type(*j, content_type, what);
  if (!type)
    return std::move(type).err();
  if (!is_index_type(*type)) {
    auto m = parse_image_manifest(first->first, content_type, opts_.limits, what);
    if (!m)
      return std::move(m).err();
    m->manifest_digest = digest;
    return m;
  }
  std::string picked;
  auto entry = pick_platform(first->first, platform, opts_.limits, fmt::format("index {}", what), &picked);
  if (!entry)
    return std::move(entry).err();
  auto second = fetch_manifest(*entry, *entry);
  if (!second)
    return std::move(second).err();
  auto nl2 = second->second.find('\n');
  auto m = parse_image_manifest(second->first, second->second.substr(0, nl2), opts_.limits,
                                fmt::format("manifest {} (for {}) on {}", *entry, picked, ref_.registry));
  if (!m)
    return std::move(m).err();
  m->manifest_digest = *entry;
  m->index_digest = digest;
  m->platform = picked;
  return m;
}

expected<std::string> registry_client::fetch_small_blob(const blob_descriptor& d) {
  if (d.size > opts_.limits.max_config_bytes)
    return make_error(errc::bad_request, fmt::format("blob {} declares {} bytes, over the cap of {}", d.digest, d.size,
                                                     opts_.limits.max_config_bytes));
  http_request rq;
  rq.max_bytes = std::max<std::uint64_t>(d.size, 1);
  rq.deadline = std::chrono::seconds(300);
  auto r = get(fmt::format("{}/blobs/{}", ref_.repository, d.digest), {}, std::move(rq));
  if (!r)
    return std::move(r).err();
  if (r->status != 200)
    return http_error(*r, fmt::format("blob {}", d.digest));
  auto digest = "sha256:" + sha256_hex(r->body);
  if (r->body.size() != d.size || digest != d.digest)
    return blob_mismatch(d, r->body.size(), digest, "nothing was used");
  return std::move(r->body);
}

expected<void> registry_client::fetch_blob(const blob_descriptor& d, int fd, std::uint64_t have,
                                           const progress_fn& progress) {
  auto fail_io = [&](const char* op) {
    return make_error(errc::operation_failed, fmt::format("{} for blob {}: {}", op, d.digest, errno_text(errno)));
  };
  if (have > d.size) {
    if (::ftruncate(fd, 0) != 0)
      return fail_io("ftruncate");
    have = 0;
  }
  sha256_hasher hasher;
  std::vector<char> buf(1 << 20);
  for (std::uint64_t off = 0; off < have;) { // the partial's bytes, to continue the hash
    auto n = ::pread(fd, buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), have - off)),
                     static_cast<off_t>(off));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return fail_io("read partial download");
    hasher.update(buf.data(), static_cast<std::size_t>(n));
    off += static_cast<std::uint64_t>(n);
  }
  std::uint64_t total = have;
  if (have < d.size) {
    if (::lseek(fd, static_cast<off_t>(have), SEEK_SET) < 0)
      return fail_io("lseek");
    http_request rq;
    rq.max_bytes = d.size;
    rq.range_from = have;
    rq.body_fd = fd;
    rq.hasher = &hasher;
    rq.progress = progress;
    auto r = get(fmt::format("{}/blobs/{}", ref_.repository, d.digest), {}, std::move(rq));
    if (!r)
      return std::move(r).err();
    if (r->status != 200 && r->status != 206)
      return http_error(*r, fmt::format("blob {}", d.digest));
    total = r->received;
  }
  auto digest = "sha256:" + hasher.hex_digest();
  if (total != d.size || digest != d.digest)
    return blob_mismatch(d, total, digest, "it was discarded");
  return {};
}

} // namespace banger::fetch
