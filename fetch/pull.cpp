// See pull.hpp.
#include "fetch/pull.hpp"

#include <fmt/format.h>

#include "common/text.hpp"

namespace banger::fetch {

namespace fs = std::filesystem;

expected<catalog> fetch_catalog(const std::string& url, std::chrono::seconds timeout) {
  auto text = fetch_text(url, max_catalog_bytes, timeout);
  if (!text)
    return std::move(text).err();
  return parse_catalog(*text, url);
}

expected<pulled_bundle> pull_bundle(const catalog_entry& entry, const fs::path& dest_dir, const pull_options& opts) {
  std::error_code ec;
  if (fs::symlink_status(dest_dir, ec).type() != fs::file_type::not_found)
    return make_error(errc::already_exists, fmt::format("{} already exists; remove kernel {} first to pull it again",
                                                        dest_dir.string(), quoted(entry.name)));
  if (entry.size > opts.max_bundle_bytes)
    return make_error(errc::operation_failed, fmt::format("kernel {} is a {}-byte bundle, over the cap of {} bytes",
                                                          quoted(entry.name), entry.size, opts.max_bundle_bytes));
  fs::path parent = dest_dir.parent_path().empty() ? fs::path(".") : dest_dir.parent_path();
  download_options d;
  d.max_bytes = opts.max_bundle_bytes;
  d.expected_size = entry.size;
  d.expected_sha256 = entry.sha256;
  d.timeout = opts.timeout;
  d.progress = opts.progress;
  auto got = download(entry.url, parent, d);
  if (!got)
    return std::move(got).err();
  auto members = extract_bundle(got->file.path(), dest_dir, opts.max_extracted_bytes, entry.url);
  got->file.remove();
  if (!members)
    return std::move(members).err();
  return pulled_bundle{std::move(got->sha256), got->size, std::move(*members)};
}

} // namespace banger::fetch
