// The world the VM end-to-end tests run in: the real CLI, daemon, root helper, QEMU (TCG here)
// and guest agent, inside a network namespace the test creates (the daemon, the helper's bridge
// and taps, and every guest live in it; it has no route out), with the default kernel and a
// busybox default image. Header-only: each e2e binary has one world.
#pragma once

#include <csignal>
#include <fstream>
#include <sstream>

#include <boost/test/unit_test.hpp>
#include <fmt/core.h>

#include "tests/support/kernel_cache.hpp"
#include "tests/support/sandbox.hpp"

namespace banger::test {

using namespace std::chrono_literals;

inline std::string test_cache() {
  const char* c = std::getenv("BANGER_TEST_CACHE");
  return c && *c ? c : "/var/cache/banger-test";
}

/// A network namespace with only `lo`, deleted on destruction.
struct netns {
  std::string name = fmt::format("banger-e2e-{}", ::getpid());
  netns() {
    run({"/usr/bin/env", "ip", "netns", "del", name});
    auto r = run({"/usr/bin/env", "ip", "netns", "add", name});
    BOOST_TEST_REQUIRE(r.exit_code == 0, "ip netns add (needs root): " + r.err);
    run({"/usr/bin/env", "ip", "-n", name, "link", "set", "lo", "up"});
  }
  ~netns() { run({"/usr/bin/env", "ip", "netns", "del", name}); }
  std::vector<std::string> exec() const { return {"/usr/bin/env", "ip", "netns", "exec", name}; }
  std::vector<std::string> links() const {
    auto r = run({"/usr/bin/env", "ip", "-n", name, "-br", "link"});
    std::vector<std::string> out;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty())
        out.push_back(line.substr(0, line.find(' ')));
    return out;
  }
};

/// One banger world in one namespace, with the default kernel and a busybox default image.
struct world {
  netns ns;
  sandbox sb;
  /// `config_toml`: the daemon's config.toml, written before its first start.
  explicit world(const std::string& config_toml = {}) {
    // The daemon's debootstrap tree cache outlives the sandbox (content-keyed).
    sb.env["XDG_CACHE_HOME"] = test_cache() + "/xdg-cache";
    if (!config_toml.empty()) {
      std::filesystem::create_directories(config_file().parent_path());
      std::ofstream(config_file()) << config_toml;
    }
    auto deb = cloud_kernel_deb();
    auto k = cli({"kernel", "import", "default", "--deb", deb.path.string()}, 300s);
    BOOST_TEST_REQUIRE(k.exit_code == 0, k.err);
    auto i = cli({"image", "build", "default", "--busybox"});
    BOOST_TEST_REQUIRE(i.exit_code == 0, i.err);
  }
  ~world() {
    cli({"vm", "prune", "-f"});
    sb.stop_all();
  }
  std::filesystem::path config_file() const {
    return std::filesystem::path(sb.env.at("XDG_CONFIG_HOME")) / "banger" / "config.toml";
  }
  /// Builds image `name` with debootstrap. debootstrap needs Debian's mirror, which the
  /// namespace cannot reach: a daemon outside it (same state dir; the tree is cached across
  /// runs in $BANGER_TEST_CACHE/xdg-cache) builds it, then the tests go back in.
  void build_debootstrap_image(const std::string& name) {
    BOOST_TEST_REQUIRE(cli({"daemon", "stop"}).exit_code == 0);
    auto img = sb.banger({"image", "build", name, "--debootstrap"}, {}, 900s);
    sb.banger({"daemon", "stop"});
    BOOST_TEST_REQUIRE(img.exit_code == 0, img.err);
  }
  run_result cli(std::vector<std::string> args, std::chrono::milliseconds timeout = 180s) {
    return sb.banger(std::move(args), ns.exec(), timeout);
  }
  std::vector<std::string> command(std::vector<std::string> args) {
    auto argv = ns.exec();
    argv.push_back((sb.bin / "banger").string());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::vector<nlohmann::json> vms() {
    auto r = cli({"vm", "list", "-a", "--json"});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    auto j = nlohmann::json::parse(r.out);
    return {j.begin(), j.end()};
  }
  /// Everything a VM can leave behind, as text; "" when nothing is: taps, per-VM NAT rules,
  /// QEMU processes of this sandbox, VM directories (overlay, work disk, sockets).
  std::string leaks() {
    std::string out;
    auto nft = ns.exec();
    nft.insert(nft.end(), {"nft", "list", "table", "ip", "banger"});
    if (auto r = run(nft); r.exit_code == 0 && r.out.find("/32") != std::string::npos)
      out += "nat rule " + r.out + "; ";
    for (const auto& l : ns.links())
      if (l.rfind("bgt", 0) == 0)
        out += "tap " + l + "; ";
    auto q = run({"/usr/bin/env", "pgrep", "-af", "qemu-system"});
    std::istringstream in(q.out);
    std::string line;
    while (std::getline(in, line))
      if (line.find(sb.root.path.string()) != std::string::npos)
        out += "qemu " + line + "; ";
    std::error_code ec;
    for (auto dir : {sb.state() / "vms", sb.runtime() / "vms"})
      if (std::filesystem::exists(dir, ec))
        for (const auto& e : std::filesystem::directory_iterator(dir, ec))
          out += "dir " + e.path().string() + "; ";
    return out;
  }
  bool journal_mentions(const std::string& stream) {
    auto r = cli({"events", "--json"});
    for (const auto& e : json_lines(r.out))
      if (e.value("stream", "") == stream)
        return true;
    return false;
  }
};

} // namespace banger::test
