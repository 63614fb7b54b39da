// Downloads and pulls against real HTTP servers on 127.0.0.1 only: python3's http.server for
// the catalog and bundles, and small servers written here for what it cannot do (lie about
// Content-Length, stream forever, stall, redirect to file://). After every failure the
// destination directory must hold nothing new.
#include "fetch/http.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <csignal>
#include <fstream>
#include <functional>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "common/sha256.hpp"
#include "common/subprocess.hpp"
#include "fetch/bundle.hpp"
#include "fetch/catalog.hpp"
#include "fetch/pull.hpp"
#include "fetch/test_support.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::fetch;
using namespace banger::fetch::test_support;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A listening socket on 127.0.0.1 with a kernel-chosen port.
int listen_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  auto a = loopback(0);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port = ntohs(a.sin_port);
  return fd;
}

// A port nobody listens on (bound, then released).
int free_port() {
  int port = 0;
  ::close(listen_loopback(port));
  return port;
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// python3 -m http.server bound to 127.0.0.1, serving `dir`.
struct python_server {
  int pid = -1;
  int port = 0;
  python_server(const fs::path& dir, const fs::path& log_dir) {
    port = free_port();
    pid = test::spawn(
      {"python3", "-m", "http.server", "--bind", "127.0.0.1", std::to_string(port), "--directory", dir.string()}, {},
      log_dir);
    for (int i = 0; i < 200 && !port_open(port); ++i)
      std::this_thread::sleep_for(50ms);
    BOOST_REQUIRE_MESSAGE(port_open(port), "python3 -m http.server did not start; see " << log_dir.string());
  }
  ~python_server() {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + "/" + path; }
};

// Answers every connection on 127.0.0.1 with `respond(fd)` after reading the request head.
class canned_server {
public:
  explicit canned_server(std::function<void(int fd, const std::atomic<bool>& stop)> respond)
    : respond_(std::move(respond)) {
    listen_fd_ = listen_loopback(port_);
    BOOST_REQUIRE(::listen(listen_fd_, 8) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~canned_server() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + "/" + path; }

private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0)
        continue;
      std::string head;
      char buf[4096];
      while (!has(head, "\r\n\r\n")) {
        pollfd q{fd, POLLIN, 0};
        if (::poll(&q, 1, 5000) <= 0)
          break;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
          break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      respond_(fd, stop_);
      ::close(fd);
    }
  }

  std::function<void(int, const std::atomic<bool>&)> respond_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Waits until the client goes away or the server stops.
void wait_for_hangup(int fd, const std::atomic<bool>& stop) {
  char buf[256];
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0 && ::recv(fd, buf, sizeof buf, 0) <= 0)
      return;
  }
}

struct fixture {
  test::temp_dir tmp{"banger-fetch-http"};
  fs::path serve = tmp.path / "serve";
  fs::path kernels = tmp.path / "kernels";
  fs::path logs = tmp.path / "logs";
  std::string vmlinux;
  written_bundle bundle;
  std::unique_ptr<python_server> server;
  std::string catalog_url;

  fixture() {
    // Only loopback is ever contacted: no proxy may stand in between.
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
      ::unsetenv(v);
    fs::create_directories(serve / "bundles");
    fs::create_directories(kernels);
    fs::create_directories(logs);
    auto src = tmp.path / "src";
    fs::create_directories(src);
    vmlinux.resize(400000);
    for (std::size_t i = 0; i < vmlinux.size(); ++i)
      vmlinux[i] = static_cast<char>((i * 2654435761u) >> 11);
    write_text(src / "vmlinux", vmlinux);
    write_text(src / "initrd.img", "initrd");
    write_text(src / "manifest.json", R"({"name":"demo"})");
    auto w = write_bundle(src, {"manifest.json", "vmlinux", "initrd.img"}, serve / "bundles" / "demo.tar.zst");
    BOOST_REQUIRE_MESSAGE(w.has_value(), why(w));
    bundle = *w;

    std::string other_sha(64, '0');
    auto doc = catalog_json({
      {"demo", "6.1.0-1", "bundles/demo.tar.zst", bundle.sha256, bundle.size, "x86_64"},
      {"wrong-sha", "6.1.0-1", "bundles/demo.tar.zst", other_sha, bundle.size, "x86_64"},
      {"wrong-size", "6.1.0-1", "bundles/demo.tar.zst", bundle.sha256, bundle.size + 1, "x86_64"},
      {"missing", "6.1.0-1", "bundles/missing.tar.zst", bundle.sha256, bundle.size, "x86_64"},
    });
    BOOST_REQUIRE(doc.has_value());
    write_text(serve / "catalog.json", *doc);
  }

  // False (with a message) when python3 is missing: the caller then skips.
  bool start_python() {
    auto probe = test::run({"python3", "--version"});
    if (probe.exit_code != 0) {
      BOOST_TEST_MESSAGE("SKIPPED: python3 is not installed; the HTTP tests serve files with python3 -m http.server");
      return false;
    }
    server = std::make_unique<python_server>(serve, logs);
    catalog_url = server->url("catalog.json");
    return true;
  }

  catalog_entry entry(const std::string& name) {
    auto c = fetch_catalog(catalog_url);
    BOOST_REQUIRE_MESSAGE(c.has_value(), why(c));
    auto e = c->find(name);
    BOOST_REQUIRE_MESSAGE(e.has_value(), why(e));
    return *e;
  }

  void expect_nothing_left() { BOOST_TEST(listing(kernels).empty(), "left behind in kernels/"); }

  template <class T>
  void expect_error(const expected<T>& r, errc code, const std::string& part) {
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "succeeded; expected an error mentioning " << part);
    BOOST_TEST_MESSAGE(r.err().message);
    BOOST_TEST(to_string(r.err().code) == to_string(code));
    BOOST_TEST(has(r.err().message, part), r.err().message << " lacks " << part);
    expect_nothing_left();
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(http, fixture)

BOOST_AUTO_TEST_CASE(pulls_a_bundle_from_a_catalog) {
  if (!start_python())
    return;
  auto e = entry("demo");
  BOOST_TEST(e.url == server->url("bundles/demo.tar.zst"));
  std::uint64_t last = 0, last_total = 0;
  pull_options opts;
  opts.progress = [&](std::uint64_t so_far, std::uint64_t total) {
    BOOST_TEST(so_far >= last);
    last = so_far;
    last_total = total;
  };
  auto r = pull_bundle(e, kernels / "demo", opts);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why(r));
  BOOST_TEST(r->sha256 == bundle.sha256);
  BOOST_TEST(r->size == bundle.size);
  BOOST_TEST(r->members.size() == 3u);
  BOOST_TEST(last == bundle.size);
  BOOST_TEST(last_total == bundle.size);
  BOOST_TEST(listing(kernels) == std::vector<std::string>{"demo"}); // the temp file is gone
  BOOST_TEST(listing(kernels / "demo") == (std::vector<std::string>{"initrd.img", "manifest.json", "vmlinux"}));
  BOOST_TEST(read_text(kernels / "demo" / "vmlinux") == vmlinux);

  auto again = pull_bundle(e, kernels / "demo", opts);
  BOOST_REQUIRE(!again.has_value());
  BOOST_TEST(to_string(again.err().code) == "already_exists");
  BOOST_TEST(listing(kernels) == std::vector<std::string>{"demo"});
}

BOOST_AUTO_TEST_CASE(download_stages_a_private_temp_file) {
  if (!start_python())
    return;
  download_options d;
  d.max_bytes = 1 << 20;
  auto r = download(server->url("bundles/demo.tar.zst"), kernels, d);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why(r));
  BOOST_TEST(r->file.path().parent_path() == kernels);
  BOOST_TEST(r->sha256 == bundle.sha256);
  BOOST_TEST(r->size == bundle.size);
  struct stat st {};
  BOOST_REQUIRE(::stat(r->file.path().c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0600u);
  BOOST_TEST(*sha256_file(r->file.path()) == bundle.sha256);
  r->file.remove();
  expect_nothing_left();

  auto text = fetch_text(catalog_url, max_catalog_bytes);
  BOOST_REQUIRE(text.has_value());
  BOOST_TEST(*text == read_text(serve / "catalog.json"));
}

BOOST_AUTO_TEST_CASE(hash_mismatch) {
  if (!start_python())
    return;
  expect_error(pull_bundle(entry("wrong-sha"), kernels / "wrong-sha"), errc::operation_failed, "sha256");

  download_options d;
  d.max_bytes = 1 << 20;
  d.expected_sha256 = std::string(64, 'f');
  expect_error(download(server->url("bundles/demo.tar.zst"), kernels, d), errc::operation_failed, "sha256");
}

BOOST_AUTO_TEST_CASE(size_mismatch) {
  if (!start_python())
    return;
  expect_error(pull_bundle(entry("wrong-size"), kernels / "wrong-size"), errc::operation_failed,
               std::to_string(bundle.size + 1));
}

BOOST_AUTO_TEST_CASE(oversized) {
  if (!start_python())
    return;
  // The catalog's size is over the squeezed cap: refused before any request.
  pull_options opts;
  opts.max_bundle_bytes = 1000;
  expect_error(pull_bundle(entry("demo"), kernels / "demo", opts), errc::operation_failed, "cap");

  // The server announces more than the cap.
  download_options d;
  d.max_bytes = 1000;
  expect_error(download(server->url("bundles/demo.tar.zst"), kernels, d), errc::operation_failed, "cap");

  // No Content-Length, and a body that never ends: the byte count stops it.
  canned_server endless([](int fd, const std::atomic<bool>& stop) {
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"))
      return;
    std::string chunk(16384, 'z');
    while (!stop && send_all(fd, chunk)) {
    }
  });
  d.max_bytes = 64 * 1024;
  expect_error(download(endless.url("endless.tar.zst"), kernels, d), errc::operation_failed, "cap");
  // The contents over a squeezed extraction cap are refused too.
  opts = {};
  opts.max_extracted_bytes = 1000;
  expect_error(pull_bundle(entry("demo"), kernels / "demo", opts), errc::bad_request,
               "refusing bundle " + server->url("bundles/demo.tar.zst"));
}

BOOST_AUTO_TEST_CASE(truncated) {
  canned_server liar([](int fd, const std::atomic<bool>&) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" + std::string(1000, 'x'));
  });
  download_options d;
  d.max_bytes = 1 << 20;
  expect_error(download(liar.url("k.tar.zst"), kernels, d), errc::operation_failed, "cut short");

  catalog_entry e{"demo", "1", liar.url("k.tar.zst"), std::string(64, 'a'), 100000, "x86_64"};
  expect_error(pull_bundle(e, kernels / "demo"), errc::operation_failed, "cut short");

  // Closed early without any Content-Length: only the catalog's size can tell.
  canned_server closer([](int fd, const std::atomic<bool>&) {
    send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(1000, 'x'));
  });
  e.url = closer.url("k.tar.zst");
  expect_error(pull_bundle(e, kernels / "demo"), errc::operation_failed, "100000");
}

BOOST_AUTO_TEST_CASE(not_found) {
  if (!start_python())
    return;
  auto url = server->url("nope/catalog.json");
  expect_error(fetch_catalog(url), errc::not_found, url);
  expect_error(pull_bundle(entry("missing"), kernels / "missing"), errc::not_found,
               server->url("bundles/missing.tar.zst"));
}

BOOST_AUTO_TEST_CASE(dead_server) {
  int port = free_port();
  auto host = "127.0.0.1:" + std::to_string(port);
  expect_error(fetch_catalog("http://" + host + "/catalog.json"), errc::unavailable, "cannot reach " + host);
  catalog_entry e{"demo", "1", "http://" + host + "/k.tar.zst", std::string(64, 'a'), 100, "x86_64"};
  expect_error(pull_bundle(e, kernels / "demo"), errc::unavailable, "cannot reach " + host);
}

BOOST_AUTO_TEST_CASE(stalled_server) {
  canned_server staller([](int fd, const std::atomic<bool>& stop) {
    if (send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"))
      wait_for_hangup(fd, stop);
  });
  download_options d;
  d.max_bytes = 1 << 20;
  d.timeout = 1s;
  expect_error(download(staller.url("k.tar.zst"), kernels, d), errc::unavailable, "stalled");
}

namespace {
/// Sends a 1 MB body `chunk` bytes every `every` until done, the client goes or the server stops.
void trickle(int fd, const std::atomic<bool>& stop, std::size_t chunk, std::chrono::milliseconds every) {
  if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"))
    return;
  std::string piece(chunk, 'x');
  for (std::size_t sent = 0; sent < 1000000 && !stop; sent += chunk) {
    if (!send_all(fd, piece))
      return;
    std::this_thread::sleep_for(every);
  }
}
} // namespace

// A server that trickles (here 40 bytes/s) is a stall, not a download to wait hours for: under
// min_bytes_per_second for the timeout, it is given up and the message says so.
BOOST_AUTO_TEST_CASE(a_crawling_server_is_given_up) {
  canned_server crawler([](int fd, const std::atomic<bool>& stop) { trickle(fd, stop, 8, 200ms); });
  download_options d;
  d.max_bytes = 1 << 20;
  d.timeout = 2s;
  expect_error(download(crawler.url("k.tar.zst"), kernels, d), errc::unavailable, "slower than 1024 bytes/s");
}

// Fast enough never to stall (20 KB/s), but the whole transfer has a deadline.
BOOST_AUTO_TEST_CASE(a_download_that_outlasts_its_deadline_ends) {
  canned_server slow([](int fd, const std::atomic<bool>& stop) { trickle(fd, stop, 2000, 100ms); });
  download_options d;
  d.max_bytes = 1 << 20;
  d.timeout = 2s;
  d.deadline = 3s;
  expect_error(download(slow.url("k.tar.zst"), kernels, d), errc::unavailable, "did not finish within 3 s");
}

BOOST_AUTO_TEST_CASE(https_is_never_redirected_to_http) {
  // What curl is told (a TLS server with a certificate the test could make curl trust is not
  // part of this suite; the refusal itself is curl's CURLOPT_REDIR_PROTOCOLS_STR).
  BOOST_TEST(std::string(redirect_protocols("https://example.invalid/k")) == "https");
  BOOST_TEST(std::string(redirect_protocols("http://example.invalid/k")) == "http,https");
}

BOOST_AUTO_TEST_CASE(only_http_and_https) {
  canned_server redirector([](int fd, const std::atomic<bool>&) {
    send_all(fd, "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n");
  });
  download_options d;
  d.max_bytes = 1 << 20;
  expect_error(download(redirector.url("k.tar.zst"), kernels, d), errc::bad_request, "http");
  expect_error(download("file:///etc/passwd", kernels, d), errc::bad_request, "file:///etc/passwd");
  expect_error(download("ftp://127.0.0.1/k.tar.zst", kernels, d), errc::bad_request, "ftp://");
  expect_error(download("not a url", kernels, d), errc::bad_request, "not a url");
}

BOOST_AUTO_TEST_CASE(redirect_loops_end) {
  canned_server looper([](int fd, const std::atomic<bool>&) {
    send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n");
  });
  download_options d;
  d.max_bytes = 1 << 20;
  expect_error(download(looper.url("k.tar.zst"), kernels, d), errc::operation_failed, "redirects");
}

BOOST_AUTO_TEST_CASE(probe_http_says_whether_a_port_speaks_http) {
  canned_server web([](int fd, const std::atomic<bool>&) {
    send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n");
  });
  BOOST_TEST(probe_http(web.url(""), 2s).value_or(0) == 302); // the redirect is not followed
  canned_server other([](int fd, const std::atomic<bool>&) { send_all(fd, "SSH-2.0-OpenSSH_9.2\r\n"); });
  BOOST_TEST(!probe_http(other.url(""), 2s).has_value());
  // TLS asked of a plain HTTP server fails; a closed port and a non-http URL are no.
  BOOST_TEST(!probe_http("https" + web.url("").substr(4), 2s).has_value());
  int port = 0;
  ::close(listen_loopback(port)); // bound once, now closed
  BOOST_TEST(!probe_http("http://127.0.0.1:" + std::to_string(port) + "/", 2s).has_value());
  BOOST_TEST(!probe_http("file:///etc/passwd", 2s).has_value());
}

BOOST_AUTO_TEST_CASE(probe_http_takes_a_self_signed_https_server) {
  auto openssl = find_program("openssl");
  if (!openssl) {
    BOOST_TEST_MESSAGE("skipped: openssl is not installed");
    return;
  }
  auto dir = tmp.path / "tls";
  fs::create_directories(dir);
  auto key = dir / "key.pem", cert = dir / "cert.pem";
  auto made =
    test::run({openssl->string(), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-subj", "/CN=dev.local", "-days", "1", "-keyout", key.string(), "-out", cert.string()});
  BOOST_TEST_REQUIRE(made.exit_code == 0, made.err);
  int port = free_port();
  std::string script = "import http.server, ssl\n"
                       "s = http.server.HTTPServer(('127.0.0.1', " +
                       std::to_string(port) +
                       "), http.server.SimpleHTTPRequestHandler)\n"
                       "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
                       "c.load_cert_chain('" +
                       cert.string() + "', '" + key.string() +
                       "')\n"
                       "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
                       "s.serve_forever()\n";
  int pid = test::spawn({"python3", "-c", script}, {}, dir);
  for (int i = 0; i < 200 && !port_open(port); ++i)
    std::this_thread::sleep_for(50ms);
  auto url = "https://127.0.0.1:" + std::to_string(port) + "/";
  auto tls = probe_http(url, 3s);
  auto plain = probe_http("http://127.0.0.1:" + std::to_string(port) + "/", 3s);
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  BOOST_TEST(tls.value_or(0) == 200); // a certificate nobody trusts: still a web server
  BOOST_TEST(!plain.has_value());     // plain HTTP to a TLS port is no answer
}

BOOST_AUTO_TEST_SUITE_END()
