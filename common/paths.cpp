// Directory layout; see paths.hpp.
#include "common/paths.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

namespace banger {

namespace fs = std::filesystem;

env_lookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0')
      return std::nullopt;
    return std::string(v);
  };
}

namespace {

std::optional<fs::path> absolute_env(const env_lookup& env, const char* name) {
  auto v = env(name);
  if (!v || v->empty() || (*v)[0] != '/')
    return std::nullopt;
  return fs::path(*v);
}

expected<fs::path> home_dir(const env_lookup& env, unsigned uid) {
  if (auto h = absolute_env(env, "HOME"))
    return *h;
  struct passwd pw {};
  struct passwd* result = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result != nullptr && pw.pw_dir != nullptr)
    return fs::path(pw.pw_dir);
  return make_error(errc::bad_request,
                    fmt::format("cannot find a home directory for uid {}: set HOME or XDG_STATE_HOME", uid));
}

} // namespace

expected<dirs> resolve_dirs(install_mode mode, const env_lookup& env, unsigned uid) {
  dirs d;
  d.mode = mode;
  if (mode == install_mode::system) {
    d.state = "/var/lib/banger";
    d.runtime = "/run/banger";
    d.config = "/etc/banger";
    d.cache = "/var/cache/banger";
    return d;
  }
  auto state = absolute_env(env, "XDG_STATE_HOME");
  auto config = absolute_env(env, "XDG_CONFIG_HOME");
  auto cache = absolute_env(env, "XDG_CACHE_HOME");
  if (!state || !config || !cache) {
    auto home = home_dir(env, uid);
    if (!home)
      return std::move(home).err();
    if (!state)
      state = *home / ".local/state";
    if (!config)
      config = *home / ".config";
    if (!cache)
      cache = *home / ".cache";
  }
  d.state = *state / "banger";
  d.config = *config / "banger";
  d.cache = *cache / "banger";
  if (auto rt = absolute_env(env, "XDG_RUNTIME_DIR"))
    d.runtime = *rt / "banger";
  else
    d.runtime = fs::path(fmt::format("/tmp/banger-{}", uid));
  return d;
}

namespace {

expected<void> make_dir(const fs::path& p, unsigned uid, bool private_dir) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", p.string(), ec.message()));
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0)
    return make_error(errc::operation_failed, fmt::format("lstat {}: {}", p.string(), std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    return make_error(errc::bad_request, fmt::format("{} is not a directory (a symlink?); remove it", p.string()));
  if (st.st_uid != uid)
    return make_error(errc::unauthorized, fmt::format("{} is owned by uid {}, not {}; remove it or fix its owner",
                                                      p.string(), st.st_uid, uid));
  if (private_dir && (st.st_mode & 077) != 0 && ::chmod(p.c_str(), 0700) != 0)
    return make_error(errc::operation_failed, fmt::format("chmod 0700 {}: {}", p.string(), std::strerror(errno)));
  return {};
}

} // namespace

expected<void> ensure_dirs(const dirs& d, unsigned uid) {
  for (const auto* p : {&d.state, &d.config, &d.cache}) {
    if (auto r = make_dir(*p, uid, false); !r)
      return r;
  }
  return make_dir(d.runtime, uid, true);
}

} // namespace banger
