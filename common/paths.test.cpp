#include "common/paths.hpp"

#include <map>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

using namespace banger;

namespace {
env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end() || it->second.empty())
      return std::nullopt;
    return it->second;
  };
}
} // namespace

BOOST_AUTO_TEST_SUITE(paths)

BOOST_AUTO_TEST_CASE(dev_mode_uses_xdg_dirs) {
  auto d = resolve_dirs(install_mode::dev,
                        fake_env({{"XDG_STATE_HOME", "/s"},
                                  {"XDG_RUNTIME_DIR", "/r"},
                                  {"XDG_CONFIG_HOME", "/c"},
                                  {"XDG_CACHE_HOME", "/k"},
                                  {"HOME", "/h"}}),
                        1000);
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(d->state.string() == "/s/banger");
  BOOST_TEST(d->runtime.string() == "/r/banger");
  BOOST_TEST(d->config.string() == "/c/banger");
  BOOST_TEST(d->cache.string() == "/k/banger");
  BOOST_TEST(d->socket().string() == "/r/banger/bangerd.sock");
  BOOST_TEST(d->journal().string() == "/s/banger/journal");
}

BOOST_AUTO_TEST_CASE(dev_mode_falls_back_to_home_and_tmp) {
  auto d =
    resolve_dirs(install_mode::dev, fake_env({{"HOME", "/home/u"}, {"XDG_STATE_HOME", "relative/ignored"}}), 1000);
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(d->state.string() == "/home/u/.local/state/banger");
  BOOST_TEST(d->config.string() == "/home/u/.config/banger");
  BOOST_TEST(d->cache.string() == "/home/u/.cache/banger");
  BOOST_TEST(d->runtime.string() == "/tmp/banger-1000");
}

BOOST_AUTO_TEST_CASE(system_mode_uses_fixed_dirs) {
  auto d = resolve_dirs(install_mode::system, fake_env({{"XDG_STATE_HOME", "/s"}}), 0);
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(d->state.string() == "/var/lib/banger");
  BOOST_TEST(d->runtime.string() == "/run/banger");
  BOOST_TEST(d->config.string() == "/etc/banger");
}

BOOST_AUTO_TEST_CASE(ensure_dirs_creates_private_runtime_and_refuses_symlink) {
  char tmpl[] = "/tmp/banger-paths-XXXXXX";
  std::filesystem::path root = ::mkdtemp(tmpl);
  dirs d;
  d.state = root / "state/banger";
  d.runtime = root / "run/banger";
  d.config = root / "config/banger";
  d.cache = root / "cache/banger";
  auto r = ensure_dirs(d, ::geteuid());
  BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.err().message));
  auto perms = std::filesystem::status(d.runtime).permissions();
  BOOST_TEST(((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none));
  BOOST_TEST(((perms & std::filesystem::perms::group_all) == std::filesystem::perms::none));

  std::filesystem::remove_all(d.runtime);
  std::filesystem::create_directories(root / "elsewhere");
  std::filesystem::create_directory_symlink(root / "elsewhere", d.runtime);
  auto bad = ensure_dirs(d, ::geteuid());
  BOOST_REQUIRE(!bad.has_value());
  BOOST_TEST(bad.err().message.find("not a directory") != std::string::npos, bad.err().message);
  std::filesystem::remove_all(root);
}

BOOST_AUTO_TEST_SUITE_END()
