// The agent's workspace landing (docs/workspaces.md, "Into a running VM"), driven on the host:
// the real banger-agent serving on a unix socket with BANGER_AGENT_HOME standing in for the
// guest's /root, fed by the host's own half (workspace/land_remote.hpp) from a real git
// checkout; then the real git is asked whether the landed copy is the host's checkout.
#include <algorithm>
#include <csignal>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "daemon/landing_capnp.hpp"
#include "tests/support/agent_client.hpp"
#include "tests/support/git_checkout.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/workspace_stream.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/scan.hpp"

namespace fs = std::filesystem;
using namespace banger;
using namespace banger::test;
using namespace banger::workspace;
using namespace std::chrono_literals;

namespace {

template <class T>
T ok(expected<T> r) {
  BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.err().message));
  return std::move(r).value();
}

expected<void> failure_of(agent_rpc::Failure::Reader f) {
  if (f.getCode() != 0)
    return make_error(errc_from_number(f.getCode()), f.getMessage().cStr());
  return {};
}

/// A landing over the test's connection, each call waited for on the test's thread.
class test_landing final : public remote_landing {
public:
  test_landing(kj::AsyncIoContext& io, agent_rpc::WorkspaceLanding::Client l) : io_(io), l_(kj::mv(l)) {}
  ~test_landing() noexcept override {}
  expected<void> push(const std::vector<landing_piece>& pieces) override {
    auto req = l_.pushRequest();
    workspace::fill_pieces(req.initPieces(static_cast<unsigned>(pieces.size())), pieces);
    return failure_of(wait_for(io_, req.send(), 30s).getFailure());
  }
  expected<std::vector<landed_stat>> seal() override {
    auto r = wait_for(io_, l_.sealRequest().send(), 30s);
    if (auto ok = failure_of(r.getFailure()); !ok)
      return ok.err();
    return daemon::stats_from(r.getStats());
  }
  expected<void> commit(const std::string& index) override {
    auto req = l_.commitRequest();
    req.setIndex(workspace::capnp_bytes(index));
    return failure_of(wait_for(io_, req.send(), 30s).getFailure());
  }

private:
  kj::AsyncIoContext& io_;
  agent_rpc::WorkspaceLanding::Client l_;
};

struct world {
  temp_dir tmp{"banger-agent-ws"};
  fs::path home = tmp.path / "home", repo = tmp.path / "repo", scratch = tmp.path / "scratch";
  kj::AsyncIoContext io = kj::setupAsyncIo();
  agent_connection conn;
  pid_t pid = -1;

  world() {
    fs::create_directories(home);
    auto sock = tmp.path / "agent.sock";
    pid = spawn({(bin_dir() / "banger-agent").string(), "--listen", sock.string()},
                {{"BANGER_AGENT_HOME", home.string()}}, tmp.path);
    for (int i = 0; i < 500 && !fs::exists(sock); ++i)
      std::this_thread::sleep_for(10ms);
    BOOST_TEST_REQUIRE(fs::exists(sock));
    conn.open(io, sock);
    fs::create_directories(repo);
    git_sh(repo, "git init -q -b main .");
    put_file(repo / "README", "hello\n");
    put_file(repo / "src" / "main.c", "int main(void) { return 0; }\n");
    put_file(repo / "tool.sh", "#!/bin/sh\n");
    put_file(repo / "we ird\nname", "odd\n");
    BOOST_TEST_REQUIRE(::symlink("src/main.c", (repo / "link").c_str()) == 0);
    git_sh(repo, "git add -A && git commit -q -m first");
    put_file(repo / "README", "hello\nand an edit\n");
    ::chmod((repo / "tool.sh").c_str(), 0755);
    put_file(repo / "added.txt", "staged\n");
    git_sh(repo, "git add added.txt");
  }
  ~world() {
    conn.close();
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }

  expected<std::unique_ptr<remote_landing>> open(const stream_begin& b) {
    auto req = conn.agent().landWorkspaceRequest();
    req.setGuestPath(b.guest_path);
    req.setBytes(b.bytes);
    req.setFiles(b.files);
    auto r = wait_for(io, req.send(), 30s);
    if (auto ok = failure_of(r.getFailure()); !ok)
      return ok.err();
    return std::unique_ptr<remote_landing>(std::make_unique<test_landing>(io, r.getLanding()));
  }

  /// Ships the checkout to guest path `guest`, through `via` when given (it sends to the receiver,
  /// or to one around it).
  expected<landed>
  land(const std::string& guest = "/root/repo",
       const std::function<expected<landed>(const source&, const git_material&, receiver&)>& via = {}) {
    auto ready = shippable(repo, scratch);
    if (!ready)
      return ready.err();
    auto& [src, git] = *ready;
    auto to = remote_receiver([this](const stream_begin& b) { return open(b); }, guest, 4096);
    return via ? via(src, git, *to) : send(src, git, guest, *to);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(agent_workspace)

BOOST_AUTO_TEST_CASE(a_checkout_lands_whole_and_git_trusts_the_index_it_gets) {
  world w;
  auto l = ok(w.land());
  BOOST_TEST(l.files == 6u);
  auto copy = w.home / "repo";
  for (const char* q : {"git rev-parse HEAD", "git status --porcelain=v1 --untracked-files=no", "git diff",
                        "git diff --cached", "git ls-files -s"})
    BOOST_TEST(git_sh(copy, q) == git_sh(w.repo, q), q);
  // The index carries the landed files' stat data: git status finds nothing to refresh, so
  // it does not rewrite the index, and an unchanged file's entry has its inode.
  auto before = git_sh(copy, "sha1sum .git/index");
  git_sh(copy, "git status --porcelain >/dev/null");
  BOOST_TEST(git_sh(copy, "sha1sum .git/index") == before);
  struct stat st {};
  BOOST_TEST_REQUIRE(::lstat((copy / "link").c_str(), &st) == 0);
  BOOST_TEST(git_sh(copy, "git ls-files --debug -- link").find("ino: " + std::to_string(st.st_ino)) !=
             std::string::npos);
  BOOST_TEST(fs::read_symlink(copy / "link") == "src/main.c");
  BOOST_TEST(::access((copy / "tool.sh").c_str(), X_OK) == 0);
  BOOST_TEST(git_sh(w.home, "ls -A") == "repo\n"); // no staging tree left beside it
}

BOOST_AUTO_TEST_CASE(a_second_landing_replaces_the_first_and_a_broken_one_leaves_it) {
  world w;
  ok(w.land());
  git_sh(w.repo, "git rm -q --cached added.txt && rm added.txt && git commit -qam second");
  put_file(w.repo / "deep" / "er" / "file", "later\n");
  git_sh(w.repo, "git add deep");
  ok(w.land());
  auto copy = w.home / "repo";
  BOOST_TEST(!fs::exists(copy / "added.txt"));
  BOOST_TEST(fs::exists(copy / "deep" / "er" / "file"));
  BOOST_TEST(git_sh(copy, "git log -1 --format=%s") == "second\n");
  auto kept = git_sh(copy, "git ls-files -s && cat README");
  put_file(w.repo / "README", "a change that never lands\n");
  auto r = w.land("/root/repo", [](const source& s, const git_material& g, receiver& to) {
    breaking_receiver b{to, 3};
    return send(s, g, "/root/repo", b);
  });
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message == "the stream broke off");
  BOOST_TEST(git_sh(copy, "git ls-files -s && cat README") == kept);
  // The agent removed the staging tree when the landing was dropped.
  for (int i = 0; i < 100 && git_sh(w.home, "ls -A") != "repo\n"; ++i) {
    w.io.waitScope.poll(); // sends the release of the dropped landing
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(git_sh(w.home, "ls -A") == "repo\n");
}

BOOST_AUTO_TEST_CASE(the_agent_refuses_what_would_land_outside_its_staging_tree) {
  world w;
  auto outside = w.tmp.path / "outside";
  fs::create_directories(outside);
  auto raw = [&](const std::string& guest, std::vector<landing_piece> pieces) -> expected<void> {
    auto entries = static_cast<std::uint64_t>(
      std::count_if(pieces.begin(), pieces.end(), [](const landing_piece& p) { return !p.is_data; }));
    auto l = w.open({guest, 1u << 20, entries});
    if (!l)
      return l.err();
    if (auto ok = (*l)->push(pieces); !ok)
      return ok;
    auto sealed = (*l)->seal();
    return sealed ? expected<void>() : expected<void>(sealed.err());
  };
  auto file = [](std::string path, std::string data) {
    std::vector<landing_piece> v(2);
    v[0].entry.path = std::move(path);
    v[0].entry.size = data.size();
    v[1].is_data = true;
    v[1].data = std::move(data);
    return v;
  };
  auto link = [](std::string path, std::string target) {
    landing_piece p;
    p.entry.path = std::move(path);
    p.entry.kind = entry_kind::symlink;
    p.entry.mode = 0777;
    p.entry.target = std::move(target);
    return p;
  };
  // A file below a symlink an earlier entry made.
  auto pieces = file("a/escaped", "x");
  pieces.insert(pieces.begin(), link("a", outside.string()));
  auto r = raw("/root/ws", pieces);
  BOOST_TEST(!r.has_value());
  BOOST_TEST(!fs::exists(outside / "escaped"));
  BOOST_TEST(raw("/root/ws", file("fine", "x")).has_value()); // what the refusals below differ from
  for (const char* bad : {"../up", "x/../../up", ".git/config", "/abs", "a//b"}) {
    auto e = raw("/root/ws", file(bad, "x"));
    BOOST_TEST(!e.has_value(), bad);
  }
  for (const char* guest : {"/root", "/etc/ws", "/root/../etc", "relative"}) {
    auto e = w.open({guest, 1, 1});
    BOOST_TEST(!e.has_value(), guest);
  }
  // More than the work disk holds is refused before anything is written.
  auto big = w.open({"/root/big", 1ull << 50, 1});
  BOOST_TEST_REQUIRE(!big.has_value());
  BOOST_TEST(big.err().message.find("give the VM a bigger one") != std::string::npos, big.err().message);
  BOOST_TEST(!fs::exists(outside / "up"));
  // Every landing was dropped uncommitted: the agent removes their staging trees.
  // The agent takes messages in order: this one is answered after the drops before it.
  auto last = ok(w.open({"/root/last", 1, 1}));
  BOOST_TEST(git_sh(w.home, "ls -A") == ".last.banger-new\n");
}

BOOST_AUTO_TEST_SUITE_END()
