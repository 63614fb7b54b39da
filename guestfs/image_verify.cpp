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

expected<image_manifest> verify_image_dir(const fs::path& dir) {
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
  for (auto& f : m.files) {
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
