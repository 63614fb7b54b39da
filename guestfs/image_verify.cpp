// Image verification (image.hpp): an image directory's manifest.json parsed and checked, and
// every file it lists checked against its size and sha256. Reads only; blocking (hashes whole
// files) on the calling thread.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"
#include "guestfs/image.hpp"

namespace banger::guestfs {

namespace fs = std::filesystem;

expected<image_manifest> read_image_manifest(const fs::path& dir) {
  auto bad = [&](std::string why) {
    return make_error(errc::bad_request, fmt::format("image directory {}: {}", dir.string(), why));
  };
  auto text = banger::read_file(dir / "manifest.json");
  if (!text)
    return bad(fmt::format("no readable manifest.json: {}", text.err().message));
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_array())
    return bad("manifest.json is not an image manifest");
  auto text_field = [&](const nlohmann::json& o, const char* key) -> std::optional<std::string> {
    if (!o.contains(key))
      return std::string();
    if (!o[key].is_string())
      return std::nullopt;
    return o[key].get<std::string>();
  };
  image_manifest m;
  auto name = text_field(j, "name"), source = text_field(j, "source"), init = text_field(j, "init"),
       packages_sha256 = text_field(j, "packages_sha256");
  if (!name || !source || !init || !packages_sha256)
    return bad("manifest.json has a non-text name, source, init or packages_sha256");
  m.name = *name;
  m.source = *source;
  m.init = *init;
  m.packages_sha256 = *packages_sha256;
  if (j.contains("created_ns")) {
    if (!j["created_ns"].is_number_integer())
      return bad("manifest.json has a non-integer created_ns");
    m.created_ns = j["created_ns"].get<std::int64_t>();
  }
  if (j.contains("packages")) {
    if (!j["packages"].is_array())
      return bad("manifest.json has a packages field that is not a list");
    for (auto& p : j["packages"]) {
      if (!p.is_string())
        return bad("manifest.json lists a package that is not text");
      m.packages.push_back(p.get<std::string>());
    }
  }
  auto text_list = [&](const nlohmann::json& o, const char* key, std::vector<std::string>& out) {
    if (!o.contains(key))
      return true;
    if (!o[key].is_array())
      return false;
    for (auto& v : o[key]) {
      if (!v.is_string())
        return false;
      out.push_back(v.get<std::string>());
    }
    return true;
  };
  if (j.contains("config")) {
    auto& c = j["config"];
    auto wd = c.is_object() ? text_field(c, "working_dir") : std::nullopt;
    auto user = c.is_object() ? text_field(c, "user") : std::nullopt;
    if (!wd || !user || !text_list(c, "env", m.config.env) || !text_list(c, "entrypoint", m.config.entrypoint) ||
        !text_list(c, "cmd", m.config.cmd))
      return bad("manifest.json has a config that is not {env, working_dir, user, entrypoint, cmd} of text");
    m.config.working_dir = *wd;
    m.config.user = *user;
  }
  if (j.contains("oci")) {
    auto& o = j["oci"];
    oci_origin origin;
    auto ref = o.is_object() ? text_field(o, "reference") : std::nullopt;
    auto md = o.is_object() ? text_field(o, "manifest_digest") : std::nullopt;
    auto id = o.is_object() ? text_field(o, "index_digest") : std::nullopt;
    auto pf = o.is_object() ? text_field(o, "platform") : std::nullopt;
    if (!ref || !md || !id || !pf || (o.contains("layers") && !o["layers"].is_array()))
      return bad("manifest.json has an oci origin that is not {reference, manifest_digest, index_digest, platform, "
                 "layers} of text");
    origin.reference = *ref;
    origin.manifest_digest = *md;
    origin.index_digest = *id;
    origin.platform = *pf;
    if (o.contains("layers"))
      for (auto& l : o["layers"]) {
        auto d = l.is_object() ? text_field(l, "digest") : std::nullopt;
        auto diff = l.is_object() ? text_field(l, "diff_id") : std::nullopt;
        if (!d || !diff || !l.contains("size") || !l["size"].is_number_unsigned())
          return bad("manifest.json has an oci layer without a text digest and diff_id and a size");
        origin.layers.push_back({*d, l["size"].get<std::uint64_t>(), *diff});
      }
    m.oci = std::move(origin);
  }
  for (auto& f : j["files"]) {
    if (!f.is_object())
      return bad("manifest.json has a file entry that is not an object");
    auto fname = text_field(f, "name"), sum = text_field(f, "sha256");
    if (!fname || !sum || !f.contains("size") || !f["size"].is_number_unsigned())
      return bad("manifest.json has a file entry without a text name and sha256 and a size");
    m.files.push_back({*fname, *sum, f["size"].get<std::uint64_t>()});
  }
  std::set<std::string> names;
  for (auto& f : m.files) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == "." || f.name == "..")
      return bad(fmt::format("manifest.json names an unsafe file {}", quoted(f.name)));
    names.insert(f.name);
  }
  for (auto* required : {"rootfs.ext4", "work-seed.ext4"})
    if (!names.count(required))
      return bad(fmt::format("manifest.json does not list {}", required));
  return m;
}

expected<image_manifest> verify_image_dir(const fs::path& dir) {
  auto bad = [&](std::string why) {
    return make_error(errc::bad_request, fmt::format("image directory {}: {}", dir.string(), why));
  };
  auto m = read_image_manifest(dir);
  if (!m)
    return m;
  for (auto& f : m->files) {
    std::error_code ec;
    auto size = fs::file_size(dir / f.name, ec);
    if (ec)
      return bad(fmt::format("{} is missing: {}", f.name, ec.message()));
    if (size != f.size)
      return bad(
        fmt::format("{} is {} bytes, the manifest says {}: the image is corrupt, rebuild it", f.name, size, f.size));
    auto sum = sha256_file(dir / f.name);
    if (!sum)
      return std::move(sum).err();
    if (*sum != f.sha256)
      return bad(fmt::format("{} has sha256 {}, the manifest says {}: the image is corrupt, rebuild it", f.name, *sum,
                             f.sha256));
  }
  return m;
}

} // namespace banger::guestfs
