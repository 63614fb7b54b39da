// banger-helper: the root helper (DESIGN §1, docs/SECURITY.md).
//   banger-helper --state-dir DIR --runtime-dir DIR
// bangerd starts it with one end of a unix socketpair as stdin and serves schema/helper.capnp
// to it over that one connection; stdout and stderr are logs. It exits when the connection
// closes. Exit codes: 0 connection closed, 1 fatal, 2 usage, 3 refused to start (stdin is not
// a unix socket, the peer is neither root nor the dirs' owner, or a dir fails its checks).
// Single-threaded.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "common/log.hpp"
#include "helper/service.hpp"
#include "helper/startup.hpp"

namespace {

void say(const std::string& msg) {
  std::fprintf(stderr, "{\"level\":\"info\",\"op\":\"\",\"msg\":\"banger-helper: %s\"}\n",
               banger::json_escape(msg).c_str());
  std::fflush(stderr);
}

int usage() {
  std::fprintf(stderr, "usage: banger-helper --state-dir DIR --runtime-dir DIR   (stdin: the daemon's unix socket)\n"
                       "       banger-helper --version\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::string state_dir, runtime_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version") {
      std::printf("banger-helper %s\n", BANGER_VERSION);
      return 0;
    } else if (a == "--state-dir" && i + 1 < argc) {
      state_dir = argv[++i];
    } else if (a == "--runtime-dir" && i + 1 < argc) {
      runtime_dir = argv[++i];
    } else {
      return usage();
    }
  }
  if (state_dir.empty() || runtime_dir.empty())
    return usage();

  // Defense in depth: whatever environment and descriptors the caller left us, tools are found
  // in the system directories only, and no inherited descriptor other than stdio stays open.
  ::setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
  ::umask(022);
  ::close_range(3, ~0U, 0);
  std::signal(SIGPIPE, SIG_IGN);

  auto peer = banger::helper::unix_peer_uid(STDIN_FILENO);
  if (!peer) {
    say("refusing to start: " + peer.err().message);
    return 3;
  }
  auto cfg = banger::helper::check_dirs(state_dir, runtime_dir, *peer);
  if (!cfg) {
    say("refusing to start: " + cfg.err().message);
    return 3;
  }
  say("serving peer uid " + std::to_string(*peer) + " (state " + state_dir + ", runtime " + runtime_dir + ")");
  try {
    auto io = kj::setupAsyncIo();
    // A plain byte stream: TwoPartyVatNetwork over an AsyncIoStream never receives fds.
    auto stream = io.lowLevelProvider->wrapSocketFd(STDIN_FILENO, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyVatNetwork network(*stream, capnp::rpc::twoparty::Side::SERVER);
    auto rpc = capnp::makeRpcServer(network, banger::helper::make_service(*cfg));
    network.onDisconnect().wait(io.waitScope);
  } catch (const kj::Exception& e) {
    say(std::string("fatal: ") + e.getDescription().cStr());
    return 1;
  }
  say("connection closed; exiting");
  return 0;
}
