// Unit tests of the QMP client against an in-process fake QMP server on a unix socket: the
// greeting and capabilities handshake, events skipped, error answers, and every way a server
// can misbehave (silence, hang-up, garbage) ending in an error, never a hang.
#include "vmm/qmp.hpp"

#include <functional>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::vmm;
using namespace std::chrono_literals;

namespace {

/// One connection's worth of a scripted QMP server, run on its own thread.
class fake_qmp {
public:
  using script = std::function<void(fake_qmp&)>;

  fake_qmp(const std::filesystem::path& sock, script s) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
    listen_ = unique_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST_REQUIRE(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_TEST_REQUIRE(::listen(listen_.get(), 4) == 0);
    thread_ = std::thread([this, s = std::move(s)] {
      conn_ = unique_fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn_)
        s(*this);
      conn_.reset();
    });
  }
  ~fake_qmp() { join(); }
  /// Waits for the script to finish; `received` is complete afterwards.
  void join() {
    if (thread_.joinable())
      thread_.join();
  }

  void send(const std::string& text) { [[maybe_unused]] auto n = ::write(conn_.get(), text.data(), text.size()); }
  /// One line from the client ("" on EOF); also recorded in received.
  std::string read_line() {
    std::string line;
    char c;
    while (::read(conn_.get(), &c, 1) == 1 && c != '\n')
      line += c;
    received.push_back(line);
    return line;
  }
  void hang_up() { conn_.reset(); }

  std::vector<std::string> received;

private:
  unique_fd listen_, conn_;
  std::thread thread_;
};

const std::string greeting =
  R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"
  "\r\n";

template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

qmp_client::clock::time_point in(std::chrono::milliseconds d) { return qmp_client::clock::now() + d; }

} // namespace

BOOST_AUTO_TEST_SUITE(qmp)

BOOST_AUTO_TEST_CASE(handshake_then_command_skipping_events) {
  test::temp_dir tmp("vmm-qmp");
  auto sock = tmp.path / "qmp.sock";
  std::string answer;
  {
    fake_qmp server(sock, [](fake_qmp& q) {
      q.send(greeting.substr(0, 10)); // split writes: the client reassembles lines
      std::this_thread::sleep_for(20ms);
      q.send(greeting.substr(10));
      q.read_line();
      q.send("{\"return\": {}}\r\n");
      q.read_line();
      q.send(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"})"
             "\r\n"
             R"({"return": {"status": "running", "singlestep": false, "running": true}})"
             "\r\n");
      q.read_line();
      q.send(R"({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})"
             "\r\n");
    });
    auto c = qmp_client::connect(sock, in(5s));
    BOOST_TEST_REQUIRE(c.has_value(), why(c));
    auto st = c->execute("query-status", in(5s));
    BOOST_TEST_REQUIRE(st.has_value(), why(st));
    answer = *st;
    auto e = c->execute("nope", in(5s), R"({"x": 1})");
    BOOST_TEST_REQUIRE(!e.has_value());
    BOOST_TEST((e.err().code == errc::operation_failed));
    BOOST_TEST(e.err().message.find("The command nope has not been found (CommandNotFound)") != std::string::npos,
               e.err().message);
    server.join();
    BOOST_TEST_REQUIRE(server.received.size() == 3u);
    BOOST_TEST(server.received[0] == R"({"execute":"qmp_capabilities"})");
    BOOST_TEST(server.received[1] == R"({"execute":"query-status"})");
    BOOST_TEST(server.received[2] == R"({"arguments":{"x":1},"execute":"nope"})");
  }
  BOOST_TEST(answer == R"({"running":true,"singlestep":false,"status":"running"})");
}

BOOST_AUTO_TEST_CASE(nothing_listening_is_unavailable) {
  test::temp_dir tmp("vmm-qmp");
  auto c = qmp_client::connect(tmp.path / "absent.sock", in(1s));
  BOOST_TEST_REQUIRE(!c.has_value());
  BOOST_TEST((c.err().code == errc::unavailable));
  BOOST_TEST(c.err().message.find("absent.sock") != std::string::npos, c.err().message);
}

BOOST_AUTO_TEST_CASE(a_silent_server_times_out) {
  test::temp_dir tmp("vmm-qmp");
  auto sock = tmp.path / "qmp.sock";
  fake_qmp server(sock, [](fake_qmp& q) { q.read_line(); }); // never greets; ends when the client hangs up
  auto c = qmp_client::connect(sock, in(200ms));
  BOOST_TEST_REQUIRE(!c.has_value());
  BOOST_TEST((c.err().code == errc::operation_failed));
  BOOST_TEST(c.err().message.find("did not answer in time") != std::string::npos, c.err().message);
}

BOOST_AUTO_TEST_CASE(a_silent_answer_times_out) {
  test::temp_dir tmp("vmm-qmp");
  auto sock = tmp.path / "qmp.sock";
  fake_qmp server(sock, [](fake_qmp& q) {
    q.send(greeting);
    q.read_line();
    q.send("{\"return\": {}}\n");
    q.read_line(); // the command, never answered
    q.read_line(); // EOF when the client gives up
  });
  auto c = qmp_client::connect(sock, in(5s));
  BOOST_TEST_REQUIRE(c.has_value(), why(c));
  auto r = c->execute("query-status", in(200ms));
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("did not answer in time") != std::string::npos, r.err().message);
  c = qmp_client::connect(tmp.path / "gone.sock", in(1s)); // closes the first connection
}

BOOST_AUTO_TEST_CASE(a_hang_up_is_not_running) {
  test::temp_dir tmp("vmm-qmp");
  auto sock = tmp.path / "qmp.sock";
  fake_qmp server(sock, [](fake_qmp& q) {
    q.send(greeting);
    q.read_line();
    q.send("{\"return\": {}}\n");
    q.read_line();
    q.hang_up(); // like QEMU after quit
  });
  auto c = qmp_client::connect(sock, in(5s));
  BOOST_TEST_REQUIRE(c.has_value(), why(c));
  auto r = c->execute("quit", in(5s));
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::not_running));
}

BOOST_AUTO_TEST_CASE(garbage_is_a_protocol_error) {
  test::temp_dir tmp("vmm-qmp");
  auto sock = tmp.path / "qmp.sock";
  fake_qmp server(sock, [](fake_qmp& q) {
    q.send("SSH-2.0-OpenSSH_9.2\r\n");
    q.read_line();
  });
  auto c = qmp_client::connect(sock, in(5s));
  BOOST_TEST_REQUIRE(!c.has_value());
  BOOST_TEST((c.err().code == errc::operation_failed));
  BOOST_TEST(c.err().message.find("not a QMP greeting") != std::string::npos, c.err().message);
}

BOOST_AUTO_TEST_SUITE_END()
