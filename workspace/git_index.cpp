#include "workspace/git_index.hpp"

#include <openssl/evp.h>

#include <fmt/format.h>

#include "common/text.hpp"
#include "workspace/rules.hpp"

namespace banger::workspace {

namespace {

void be32(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    out.push_back(static_cast<char>((v >> s) & 0xff));
}

void be16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

} // namespace

expected<std::array<std::uint8_t, 20>> parse_oid(std::string_view hex) {
  std::array<std::uint8_t, 20> out{};
  if (hex.size() != 40)
    return make_error(errc::bad_request, fmt::format("object id {} is not 40 hex digits", quoted(hex, 80)));
  for (std::size_t i = 0; i < 20; ++i) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return make_error(errc::bad_request, fmt::format("object id {} is not 40 hex digits", quoted(hex, 80)));
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

expected<std::string> encode_index(const std::vector<index_record>& records, const std::vector<index_stat>& stats) {
  if (records.size() != stats.size())
    return make_error(errc::bad_request, "index: records and stat data differ in number");
  std::string out = "DIRC";
  be32(out, 2);
  be32(out, static_cast<std::uint32_t>(records.size()));
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (i > 0) {
      const auto& p = records[i - 1];
      if (p.path > r.path || (p.path == r.path && p.stage >= r.stage))
        return make_error(errc::bad_request, fmt::format("index: {} is out of order", quoted(r.path)));
    }
    if (r.mode != 0100644 && r.mode != 0100755 && r.mode != 0120000 && r.mode != 0160000)
      return make_error(errc::bad_request, fmt::format("index: {} has mode {:o}", quoted(r.path), r.mode));
    if (r.stage > 3)
      return make_error(errc::bad_request, fmt::format("index: {} has stage {}", quoted(r.path), r.stage));
    if (r.path.empty() || r.path.find('\0') != std::string::npos)
      return make_error(errc::bad_request, "index: an empty path or one with NUL");
    const auto& s = stats[i];
    std::size_t start = out.size();
    be32(out, s.ctime);
    be32(out, s.ctime_ns);
    be32(out, s.mtime);
    be32(out, s.mtime_ns);
    be32(out, s.dev);
    be32(out, s.ino);
    be32(out, r.mode);
    be32(out, s.uid);
    be32(out, s.gid);
    be32(out, s.size);
    out.append(reinterpret_cast<const char*>(r.oid.data()), r.oid.size());
    std::uint16_t len = r.path.size() >= 0xfff ? 0xfff : static_cast<std::uint16_t>(r.path.size());
    be16(out, static_cast<std::uint16_t>((r.stage << 12) | len));
    out += r.path;
    // 1 to 8 NULs: the entry's length becomes a multiple of 8.
    std::size_t entry = out.size() - start;
    out.append(8 - entry % 8, '\0');
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(out.data(), out.size(), md, &n, EVP_sha1(), nullptr) != 1 || n != 20)
    return make_error(errc::internal, "index: SHA-1 of the index failed");
  out.append(reinterpret_cast<const char*>(md), n);
  return out;
}

expected<std::vector<index_stat>>
index_stats(const std::vector<index_record>& index,
            const std::function<expected<std::optional<landed_file>>(const std::string& path)>& find) {
  std::vector<index_stat> out(index.size());
  for (std::size_t i = 0; i < index.size(); ++i) {
    const auto& r = index[i];
    if (auto ok = validate_entry_path(r.path); !ok)
      return ok.err();
    if (!r.worktree_matches)
      continue;
    auto f = find(r.path);
    if (!f)
      return f.err();
    if (*f && index_mode((*f)->link, (*f)->mode) == r.mode)
      out[i] = (*f)->stat;
  }
  return out;
}

} // namespace banger::workspace
