// The daemon's checks of what a client sends, with a raw Cap'n Proto client on the real
// bangerd's socket: what the CLI would never send still gets a clear refusal.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <boost/test/unit_test.hpp>

#include "common/error.hpp"
#include "schema/banger.capnp.h"
#include "tests/support/sandbox.hpp"

using namespace banger;

namespace {

/// A raw client of the daemon listening in `sb`.
struct raw_client {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> twoparty;
  rpc::Daemon::Client daemon = nullptr;
  explicit raw_client(const test::sandbox& sb) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = sb.socket().string();
    std::copy(path.begin(), path.end(), addr.sun_path);
    BOOST_TEST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    twoparty = kj::heap<capnp::TwoPartyClient>(*stream);
    daemon = twoparty->bootstrap().castAs<rpc::Daemon>();
  }
};

struct refusal {
  errc code;
  std::string message;
};

/// vmSyncFiles of VM "vm1" with `files` (guest path, mode, bytes).
refusal sync(raw_client& c, std::vector<std::tuple<std::string, std::uint32_t, std::size_t>> files) {
  auto req = c.daemon.vmSyncFilesRequest();
  req.setName("vm1");
  auto list = req.initFiles(static_cast<unsigned>(files.size()));
  std::string data;
  for (unsigned i = 0; i < files.size(); ++i) {
    auto& [path, mode, bytes] = files[i];
    list[i].setGuestPath(path);
    list[i].setMode(mode);
    data.assign(bytes, 'x');
    list[i].setData(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
  }
  auto r = req.send().wait(c.io.waitScope);
  return {errc_from_number(r.getError().getCode()), r.getError().getMessage()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(daemon_rpc)

BOOST_AUTO_TEST_CASE(synced_files_are_checked_before_any_vm_is_looked_up) {
  test::sandbox sb;
  auto start = sb.banger({"daemon", "start"});
  BOOST_TEST_REQUIRE(start.exit_code == 0, start.err);
  raw_client c(sb);
  auto bad = [&](std::vector<std::tuple<std::string, std::uint32_t, std::size_t>> files, const std::string& part) {
    auto r = sync(c, std::move(files));
    BOOST_TEST((r.code == errc::bad_request), r.message);
    BOOST_TEST(r.message.find(part) != std::string::npos, r.message);
  };
  bad({{"/root/../etc/shadow", 0600, 1}}, "synced file:");
  bad({{"/etc/passwd", 0644, 1}}, "synced file:");
  bad({{"/root", 0644, 1}}, "synced file:");
  bad({{"/root/a\nb", 0644, 1}}, "synced file:");
  bad({{"/root/suid", 04755, 1}}, "mode 4755 is not a permission mode");
  bad({{"/root/a", 0644, 10u << 20}, {"/root/b", 0644, 7u << 20}}, "the synced files pass");
  std::vector<std::tuple<std::string, std::uint32_t, std::size_t>> many;
  for (int i = 0; i < 1025; ++i)
    many.emplace_back("/root/f" + std::to_string(i), 0644, 0);
  bad(many, "1025 files to sync");
  // Well formed, but there is no such VM: the lookup's error, not a write.
  auto none = sync(c, {{"/root/.gitconfig", 0644, 3}});
  BOOST_TEST((none.code == errc::not_found), none.message);
  BOOST_TEST(sb.banger({"daemon", "stop"}).exit_code == 0);
}

BOOST_AUTO_TEST_SUITE_END()
