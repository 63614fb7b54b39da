// See validate.hpp. Parsers are hand-written over std::string_view (no locale, no strtol
// leniency: "+1", " 1" and "01" are all refused).
#include "helper/validate.hpp"
#include "common/check.hpp"

#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <sys/stat.h>
#include <unistd.h>

#include "common/process.hpp"

namespace banger::helper {

namespace {

error bad(std::string message) { return make_error(errc::bad_request, std::move(message)); }

bool lower_alnum(std::string_view s) {
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      return false;
  return true;
}

/// A decimal number without sign, spaces or leading zeros, at most `max`.
bool parse_decimal(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0'))
    return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max)
    return false;
  out = v;
  return true;
}

bool parse_quad(std::string_view s, std::array<std::uint8_t, 4>& out) {
  for (int i = 0; i < 4; ++i) {
    auto dot = s.find('.');
    if ((i < 3) != (dot != std::string_view::npos))
      return false;
    std::uint64_t v = 0;
    if (!parse_decimal(s.substr(0, dot), 255, v))
      return false;
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    s = i < 3 ? s.substr(dot + 1) : std::string_view{};
  }
  return true;
}

std::string shown(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 64))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out + (s.size() > 64 ? "...\"" : "\"");
}

bool lexically_under(const std::string& p, const std::filesystem::path& root) {
  const std::string& r = root.native();
  if (r == "/")
    return true;
  return p == r || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/');
}

} // namespace

expected<void> validate_bridge_name(std::string_view name) {
  if (name == "br-fc")
    return {};
  constexpr std::string_view prefix = "br-fc-";
  if (name.substr(0, prefix.size()) == prefix && name.size() > prefix.size() && name.size() <= prefix.size() + 9 &&
      lower_alnum(name.substr(prefix.size())))
    return {};
  return bad("bridge name " + shown(name) + " is not banger's: it must be br-fc or br-fc- followed by 1-9 of [a-z0-9]");
}

expected<void> validate_tap_name(std::string_view name) {
  constexpr std::string_view prefix = "bgt";
  if (name.substr(0, prefix.size()) == prefix && name.size() > prefix.size() && name.size() <= prefix.size() + 12 &&
      lower_alnum(name.substr(prefix.size())))
    return {};
  return bad("tap name " + shown(name) + " is not banger's: it must be bgt followed by 1-12 of [a-z0-9]");
}

expected<void> validate_ipv4(std::string_view addr) {
  std::array<std::uint8_t, 4> q{};
  if (!parse_quad(addr, q))
    return bad("address " + shown(addr) + " is not a dotted-quad IPv4 address (four parts 0-255, no leading zeros)");
  return {};
}

expected<void> validate_cidr(std::string_view cidr) {
  auto slash = cidr.find('/');
  std::array<std::uint8_t, 4> q{};
  std::uint64_t prefix = 0;
  if (slash == std::string_view::npos || !parse_quad(cidr.substr(0, slash), q) ||
      !parse_decimal(cidr.substr(slash + 1), 32, prefix))
    return bad("CIDR " + shown(cidr) + " is not a.b.c.d/N (a strict dotted quad and a decimal prefix)");
  if (prefix < 8)
    return bad("CIDR " + shown(cidr) + " has prefix /" + std::to_string(prefix) + "; banger allows /8 to /32");
  return {};
}

std::string cidr_network(std::string_view cidr) {
  BANGER_CHECK(validate_cidr(cidr).has_value(), "cidr_network of an address validate_cidr refuses");
  auto slash = cidr.find('/');
  std::array<std::uint8_t, 4> q{};
  std::uint64_t prefix = 0;
  parse_quad(cidr.substr(0, slash), q);
  parse_decimal(cidr.substr(slash + 1), 32, prefix);
  std::uint32_t a = (std::uint32_t{q[0]} << 24) | (std::uint32_t{q[1]} << 16) | (std::uint32_t{q[2]} << 8) | q[3];
  std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  a &= mask;
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." + std::to_string((a >> 8) & 0xff) +
         "." + std::to_string(a & 0xff) + "/" + std::to_string(prefix);
}

expected<unsigned> parse_uid(std::string_view text) {
  std::uint64_t v = 0;
  if (!parse_decimal(text, 0xffffffffULL, v))
    return bad("uid " + shown(text) + " is not a decimal number");
  if (auto ok = validate_uid(static_cast<unsigned>(v)); !ok)
    return std::move(ok).err();
  return static_cast<unsigned>(v);
}

expected<void> validate_uid(unsigned uid) {
  if (uid == 0xffffffffU)
    return bad("uid 4294967295 ((uid_t)-1) is not a user");
  return {};
}

expected<void> validate_signal(int signo) {
  switch (signo) {
  case SIGTERM:
  case SIGKILL:
  case SIGINT:
  case SIGHUP:
  case SIGQUIT: return {};
  default: return bad("signal " + std::to_string(signo) + " is not allowed: only TERM, KILL, INT, HUP and QUIT");
  }
}

expected<void> validate_path_lexically_under(const std::filesystem::path& path, const roots& allowed) {
  const std::string& p = path.native();
  if (p.empty() || p[0] != '/')
    return bad("path " + shown(p) + " is not absolute");
  if (p.find('\0') != std::string::npos)
    return bad("path " + shown(p) + " contains a NUL byte");
  if (p != "/") {
    if (p.back() == '/')
      return bad("path " + shown(p) + " is not normalised (trailing /)");
    std::size_t start = 1;
    while (start <= p.size()) {
      auto end = p.find('/', start);
      if (end == std::string::npos)
        end = p.size();
      std::string_view comp(p.data() + start, end - start);
      if (comp.empty())
        return bad("path " + shown(p) + " is not normalised (//)");
      if (comp == "." || comp == "..")
        return bad("path " + shown(p) + " is not normalised (a " + std::string(comp) + " component)");
      start = end + 1;
    }
  }
  for (const auto& r : allowed)
    if (lexically_under(p, r))
      return {};
  std::string list;
  for (const auto& r : allowed)
    list += (list.empty() ? "" : ", ") + r.string();
  return bad("path " + shown(p) + " is outside banger's directories (" + list + ")");
}

expected<void> validate_path_under(const std::filesystem::path& path, const roots& allowed) {
  if (auto ok = validate_path_lexically_under(path, allowed); !ok)
    return ok;
  const std::string& p = path.native();
  std::size_t end = 0;
  while (end < p.size()) {
    end = p.find('/', end + 1);
    if (end == std::string::npos)
      end = p.size();
    std::string prefix = p.substr(0, end);
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) != 0) {
      int e = errno;
      return make_error(e == ENOENT ? errc::not_found : errc::bad_request,
                        "lstat " + prefix + " (checking " + p + "): " + errno_text(e));
    }
    if (S_ISLNK(st.st_mode))
      return bad("path " + p + " has a symlink component (" + prefix + "); banger's helper follows no symlinks");
    if (end < p.size() && !S_ISDIR(st.st_mode))
      return bad("path " + p + ": " + prefix + " is not a directory");
  }
  return {};
}

expected<process_identity> read_process_identity(int pid, const std::filesystem::path& proc) {
  if (auto ok = validate_pid(pid); !ok)
    return std::move(ok).err();
  process_identity id;
  id.pid = pid;
  auto dir = proc / std::to_string(pid);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return make_error(errc::not_found,
                      "process " + std::to_string(pid) + " does not exist (" + errno_text(errno) + ")");
  id.uid = st.st_uid;
  char buf[PATH_MAX];
  auto n = ::readlink((dir / "exe").c_str(), buf, sizeof buf - 1);
  if (n < 0)
    return make_error(errc::unauthorized, "process " + std::to_string(pid) + " is not banger's VMM: readlink " +
                                            (dir / "exe").string() + ": " + errno_text(errno));
  id.exe.assign(buf, static_cast<std::size_t>(n));
  auto cmdline = read_file(dir / "cmdline");
  if (!cmdline)
    return make_error(errc::not_found, "process " + std::to_string(pid) + ": " + cmdline.err().message);
  std::size_t start = 0;
  const std::string& c = *cmdline;
  while (start < c.size()) {
    auto nul = c.find('\0', start);
    if (nul == std::string::npos)
      nul = c.size();
    id.args.push_back(c.substr(start, nul - start));
    start = nul + 1;
  }
  return id;
}

expected<void> validate_vmm_identity(const process_identity& p, const roots& allowed, unsigned owner_uid) {
  auto refuse = [&](const std::string& why) {
    return make_error(errc::unauthorized, "process " + std::to_string(p.pid) + " is not banger's VMM: " + why);
  };
  if (auto ok = validate_pid(p.pid); !ok)
    return ok;
  auto name = std::filesystem::path(p.exe).filename().native();
  if (p.exe.empty() || p.exe[0] != '/' || (name != "qemu-system-x86_64" && name != "firecracker"))
    return refuse("its executable " + shown(p.exe) + " is not qemu-system-x86_64 or firecracker");
  // Defense in depth: a VMM banger started runs as the daemon's owner (or root); another user's
  // QEMU is not banger's even if its command line mentions our directories.
  if (p.uid != owner_uid && p.uid != 0)
    return refuse("it runs as uid " + std::to_string(p.uid) + ", not banger's (" + std::to_string(owner_uid) + ")");
  for (const auto& arg : p.args) {
    std::vector<std::string> candidates;
    if (!arg.empty() && arg[0] == '/')
      candidates.push_back(arg);
    for (std::string_view key : {std::string_view("unix:"), std::string_view("path=")})
      for (auto at = arg.find(key); at != std::string::npos; at = arg.find(key, at + 1)) {
        auto from = at + key.size();
        candidates.push_back(arg.substr(from, arg.find(',', from) - from));
      }
    for (const auto& c : candidates)
      if (validate_path_lexically_under(c, allowed))
        return {};
  }
  return refuse("no argument of its command line names a path under banger's state or runtime directory");
}

expected<void> validate_pid(int pid) {
  if (pid <= 1)
    return bad("pid " + std::to_string(pid) + " is not allowed (must be > 1)");
  return {};
}

} // namespace banger::helper
