// See http.hpp. One curl easy handle per call; the write callback is where the cap, the
// announced-length checks and the hashing happen, so no byte past the cap reaches the disk.
#include "fetch/http.hpp"
#include "common/check.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <unistd.h>

#include <curl/curl.h>
#include <fmt/format.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"

namespace banger::fetch {

namespace fs = std::filesystem;

staged_file& staged_file::operator=(staged_file&& o) noexcept {
  if (this != &o) {
    remove();
    path_ = std::exchange(o.path_, {});
  }
  return *this;
}

void staged_file::remove() noexcept {
  if (!path_.empty())
    ::unlink(path_.c_str());
  path_.clear();
}

namespace {

// curl_global_init must run once before any handle exists and is not thread-safe on every
// libcurl build; this is process-wide library setup, not program state.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct curl_deleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using curl_ptr = std::unique_ptr<CURL, curl_deleter>;

struct curlu_deleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using curlu_ptr = std::unique_ptr<CURLU, curlu_deleter>;

struct curl_string {
  char* p = nullptr;
  ~curl_string() { curl_free(p); }
};

// The pieces of a checked URL that error messages need.
struct url_info {
  std::string url;  // normalized
  std::string host; // "host" or "host:port"
};

expected<url_info> parse_url(CURLU* u, std::string_view shown) {
  curl_string scheme, host, port, full;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme.p, 0) != CURLUE_OK)
    return make_error(errc::bad_request, fmt::format("{} is not an absolute URL", quoted(shown)));
  std::string_view s = scheme.p;
  if (s != "http" && s != "https")
    return make_error(errc::bad_request,
                      fmt::format("{} is not an http:// or https:// URL; catalogs and bundles are fetched over HTTP(S)",
                                  quoted(shown)));
  if (curl_url_get(u, CURLUPART_HOST, &host.p, 0) != CURLUE_OK || *host.p == '\0')
    return make_error(errc::bad_request, fmt::format("URL {} has no host", quoted(shown)));
  if (curl_url_get(u, CURLUPART_URL, &full.p, 0) != CURLUE_OK)
    return make_error(errc::bad_request, fmt::format("{} is not a valid URL", quoted(shown)));
  url_info info{full.p, host.p};
  if (curl_url_get(u, CURLUPART_PORT, &port.p, 0) == CURLUE_OK)
    info.host += fmt::format(":{}", port.p);
  return info;
}

expected<url_info> check_url(std::string_view url) {
  init_curl_once();
  curlu_ptr u(curl_url());
  if (!u)
    throw std::bad_alloc();
  std::string s(url);
  if (s.empty() || curl_url_set(u.get(), CURLUPART_URL, s.c_str(), 0) != CURLUE_OK)
    return make_error(errc::bad_request, fmt::format("{} is not a valid absolute URL", quoted(s)));
  return parse_url(u.get(), s);
}

// Where the body goes: a file (download) or a string (fetch_text).
struct body_sink {
  CURL* curl = nullptr;
  int fd = -1;
  std::string* text = nullptr;
  sha256_hasher* hasher = nullptr;
  const progress_fn* progress = nullptr;

  std::uint64_t max_bytes = 0;
  std::optional<std::uint64_t> expected_size;

  std::uint64_t received = 0;
  std::uint64_t announced = 0; // Content-Length of the final response, 0 when absent
  bool saw_headers = false;

  enum class stop { none, over_cap, announced_over_cap, announced_wrong_size, over_expected, write_failed };
  stop why = stop::none;
  int write_errno = 0;

  std::chrono::seconds timeout{0}, deadline{0}; // as transfer() set them

  // http_exchange(): any status is a reply; only a 2xx body goes to fd/text/hasher.
  http_reply* reply = nullptr;
  std::uint64_t range_from = 0;
  bool to_sink = true; // false: the body is an error page, kept (capped) in reply->body
};

constexpr std::size_t max_error_body = 64 * 1024;

// Where a 2xx body starts for an exchange: a 206 continues at range_from, a 200 to a range
// request restarts the file and the hash.
bool start_exchange_body(body_sink& s) {
  long status = 0;
  curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, &status);
  s.reply->status = status;
  s.to_sink = status >= 200 && status < 300;
  if (!s.to_sink || s.range_from == 0)
    return true;
  if (status == 206) {
    s.received = s.range_from;
    return true;
  }
  s.reply->restarted = true;
  if (s.fd >= 0 && (::ftruncate(s.fd, 0) != 0 || ::lseek(s.fd, 0, SEEK_SET) != 0)) {
    s.write_errno = errno;
    s.why = body_sink::stop::write_failed;
    return false;
  }
  if (s.hasher != nullptr)
    *s.hasher = sha256_hasher();
  return true;
}

bool write_all(int fd, const char* p, std::size_t n, int& err) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      err = errno;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Returning anything but `n` makes curl abort the transfer with CURLE_WRITE_ERROR.
std::size_t on_body(char* ptr, std::size_t size, std::size_t nmemb, void* userdata) {
  auto& s = *static_cast<body_sink*>(userdata);
  std::size_t n = size * nmemb;
  if (!s.saw_headers) {
    s.saw_headers = true;
    if (s.reply != nullptr && !start_exchange_body(s))
      return 0;
    curl_off_t cl = -1;
    if (s.to_sink && curl_easy_getinfo(s.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0) {
      s.announced = static_cast<std::uint64_t>(cl) + s.received; // a 206 announces what is left
      // Defense in depth: CURLOPT_MAXFILESIZE_LARGE refuses this before the body too.
      if (s.announced > s.max_bytes) {
        s.why = body_sink::stop::announced_over_cap;
        return n == 0 ? 1 : 0;
      }
      if (s.expected_size && s.announced != *s.expected_size) {
        s.why = body_sink::stop::announced_wrong_size;
        return n == 0 ? 1 : 0;
      }
    }
  }
  if (!s.to_sink) {
    auto& body = s.reply->body;
    body.append(ptr, std::min(n, max_error_body - std::min(max_error_body, body.size())));
    return n;
  }
  if (n > s.max_bytes - s.received) {
    s.why = body_sink::stop::over_cap;
    return 0;
  }
  if (s.expected_size && s.received + n > *s.expected_size) {
    s.why = body_sink::stop::over_expected;
    return 0;
  }
  if (s.fd >= 0 && !write_all(s.fd, ptr, n, s.write_errno)) {
    s.why = body_sink::stop::write_failed;
    return 0;
  }
  if (s.text != nullptr)
    s.text->append(ptr, n);
  if (s.hasher != nullptr)
    s.hasher->update(ptr, n);
  s.received += n;
  if (s.progress != nullptr && *s.progress)
    (*s.progress)(s.received, s.announced);
  return n;
}

std::string size_text(std::uint64_t n) { return fmt::format("{} bytes", n); }

// Turns a failed transfer into the error a user sees.
error transfer_error(CURLcode rc, CURL* curl, const body_sink& s, const url_info& u, const char* errbuf) {
  std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  using stop = body_sink::stop;
  switch (s.why) {
  case stop::over_cap:
    return make_error(
      errc::operation_failed,
      fmt::format("download of {} refused: the body is larger than the cap of {}", u.url, size_text(s.max_bytes)));
  case stop::announced_over_cap:
    return make_error(errc::operation_failed,
                      fmt::format("download of {} refused: the server announced {}, over the cap of {}", u.url,
                                  size_text(s.announced), size_text(s.max_bytes)));
  case stop::announced_wrong_size:
    return make_error(errc::operation_failed,
                      fmt::format("download of {} refused: the server announced {} but the catalog says {}; the "
                                  "catalog or the server is out of date",
                                  u.url, size_text(s.announced), size_text(*s.expected_size)));
  case stop::over_expected:
    return make_error(errc::operation_failed,
                      fmt::format("download of {} refused: the body is larger than the expected {}", u.url,
                                  size_text(*s.expected_size)));
  case stop::write_failed:
    return make_error(errc::operation_failed,
                      fmt::format("write downloaded data from {}: {}", u.url, errno_text(s.write_errno)));
  case stop::none: break;
  }
  switch (rc) {
  case CURLE_HTTP_RETURNED_ERROR: {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 404 || status == 410)
      return make_error(errc::not_found,
                        fmt::format("{} not found (HTTP {}); check the name and the catalog URL", u.url, status));
    if (status >= 500)
      return make_error(errc::unavailable,
                        fmt::format("server {} failed with HTTP {} for {}; try again later", u.host, status, u.url));
    return make_error(errc::operation_failed, fmt::format("GET {} failed with HTTP {}", u.url, status));
  }
  case CURLE_FILESIZE_EXCEEDED:
    return make_error(errc::operation_failed,
                      fmt::format("download of {} refused: the server announced more than the cap of {}", u.url,
                                  size_text(s.max_bytes)));
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_GOT_NOTHING:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    if (s.received == 0)
      return make_error(errc::unavailable,
                        fmt::format("cannot reach {}: {}; check the URL and that the server is up", u.host, detail));
    return make_error(errc::unavailable, fmt::format("download of {} broke off after {}: {}; try again", u.url,
                                                     size_text(s.received), detail));
  case CURLE_OPERATION_TIMEDOUT: {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t took_us = 0; // the whole transfer took the deadline: that, not a stall, ended it
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &took_us);
    if (std::chrono::microseconds(took_us) >= s.deadline - std::chrono::milliseconds(500))
      return make_error(errc::unavailable,
                        fmt::format("download of {} did not finish within {} s (got {}); try again on a faster "
                                    "link",
                                    u.url, s.deadline.count(), size_text(s.received)));
    if (status == 0) // no response at all
      return make_error(errc::unavailable,
                        fmt::format("cannot reach {}: {}; check the URL and that the server is up", u.host, detail));
    return make_error(errc::unavailable,
                      fmt::format("download of {} stalled after {} (slower than {} bytes/s for {} s): {}; try again",
                                  u.url, size_text(s.received), min_bytes_per_second, s.timeout.count(), detail));
  }
  case CURLE_PARTIAL_FILE:
    return make_error(errc::operation_failed,
                      fmt::format("download of {} was cut short: got {} of the announced {}; try again", u.url,
                                  size_text(s.received), size_text(s.announced)));
  case CURLE_UNSUPPORTED_PROTOCOL:
    return make_error(errc::bad_request,
                      fmt::format("{} redirects to a URL that is not http:// or https://: {}", u.url, detail));
  case CURLE_TOO_MANY_REDIRECTS:
    return make_error(errc::operation_failed, fmt::format("{} redirects more than 5 times", u.url));
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
    return make_error(errc::operation_failed, fmt::format("TLS with {} failed: {}", u.host, detail));
  default:
    return make_error(errc::operation_failed,
                      fmt::format("GET {}: {} (curl error {})", u.url, detail, static_cast<int>(rc)));
  }
}

// Response headers for an exchange: each response (a redirect's too) starts a fresh map.
std::size_t on_header(char* ptr, std::size_t size, std::size_t nmemb, void* userdata) {
  auto& r = *static_cast<http_reply*>(userdata);
  std::size_t n = size * nmemb;
  std::string_view line(ptr, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    r.headers.clear();
    return n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return n;
  std::string name(line.substr(0, colon));
  for (auto& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  r.headers[name] = std::string(value);
  return n;
}

struct slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// Runs one GET into `s` (with `rq`: the exchange's method, headers and range, and no failing on
// an HTTP error status).
expected<void> transfer(const url_info& u, body_sink& s, std::chrono::seconds timeout, std::chrono::seconds deadline,
                        const http_request* rq = nullptr) {
  init_curl_once();
  curl_ptr c(curl_easy_init());
  if (!c)
    throw std::bad_alloc();
  CURL* h = c.get();
  s.curl = h;
  char errbuf[CURL_ERROR_SIZE] = {};
  long secs = static_cast<long>(timeout.count() > 0 ? timeout.count() : 30);
  long total = static_cast<long>(deadline.count() > 0 ? deadline.count() : 1800);
  s.timeout = std::chrono::seconds(secs);
  s.deadline = std::chrono::seconds(total);
  curl_easy_setopt(h, CURLOPT_URL, u.url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, redirect_protocols(u.url));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  std::unique_ptr<curl_slist, slist_deleter> headers;
  std::string range;
  if (rq == nullptr) {
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  } else {
    for (const auto& line : rq->headers) {
      curl_slist* l = curl_slist_append(headers.get(), line.c_str());
      if (l == nullptr)
        throw std::bad_alloc();
      (void)headers.release();
      headers.reset(l);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s.reply);
    if (rq->head)
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (rq->range_from > 0) {
      range = fmt::format("{}-", rq->range_from);
      curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    }
  }
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, secs);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, min_bytes_per_second);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, total);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(s.max_bytes));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "banger/" BANGER_VERSION);
  // No CURLOPT_ACCEPT_ENCODING: the cap and the hash apply to exactly the bytes served.
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK)
    return transfer_error(rc, h, s, u, errbuf);
  if (s.reply != nullptr) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s.reply->status);
    char* final_url = nullptr;
    if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &final_url) == CURLE_OK && final_url != nullptr)
      s.reply->url = final_url;
    auto st = s.reply->status;
    if (st < 200 || st >= 300 || rq->head) {
      s.to_sink = false;
      return {};
    }
  }
  if (s.announced > 0 && s.received != s.announced) // Defense in depth: curl reports PARTIAL_FILE
    return make_error(errc::operation_failed,
                      fmt::format("download of {} was cut short: got {} of the announced {}; try again", u.url,
                                  size_text(s.received), size_text(s.announced)));
  return {};
}

} // namespace

const char* redirect_protocols(std::string_view url) { return url.rfind("https://", 0) == 0 ? "https" : "http,https"; }

expected<std::string> check_http_url(std::string_view url) {
  auto u = check_url(url);
  if (!u)
    return std::move(u).err();
  return u->url;
}

expected<std::string> resolve_http_url(std::string_view base, std::string_view ref) {
  init_curl_once();
  curlu_ptr u(curl_url());
  if (!u)
    throw std::bad_alloc();
  std::string b(base), r(ref);
  auto checked = check_url(b);
  if (!checked)
    return std::move(checked).err();
  if (r.empty() || curl_url_set(u.get(), CURLUPART_URL, b.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u.get(), CURLUPART_URL, r.c_str(), 0) != CURLUE_OK)
    return make_error(errc::bad_request, fmt::format("{} is not a valid URL relative to {}", quoted(r), b));
  auto resolved = parse_url(u.get(), r);
  if (!resolved)
    return std::move(resolved).err();
  return resolved->url;
}

expected<download_result> download(const std::string& url, const fs::path& dest_dir, const download_options& opts) {
  BANGER_CHECK(opts.max_bytes > 0, "download: max_bytes must be set");
  auto u = check_url(url);
  if (!u)
    return std::move(u).err();
  if (opts.expected_sha256 && !is_sha256_hex(*opts.expected_sha256))
    return make_error(errc::bad_request, fmt::format("expected sha256 {} for {} is not 64 lowercase hex digits",
                                                     quoted(*opts.expected_sha256), u->url));
  if (opts.expected_size && *opts.expected_size > opts.max_bytes)
    return make_error(errc::operation_failed, fmt::format("{} is {}, over the cap of {}", u->url,
                                                          size_text(*opts.expected_size), size_text(opts.max_bytes)));

  std::string tmpl = (dest_dir / ".download-XXXXXX").string();
  unique_fd fd(::mkostemp(tmpl.data(), O_CLOEXEC)); // mode 0600
  if (!fd) {
    int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::operation_failed,
                      fmt::format("mkstemp {}: {}", tmpl, errno_text(e)));
  }
  staged_file file{fs::path(tmpl)}; // unlinked on every early return below

  sha256_hasher hasher;
  body_sink s;
  s.fd = fd.get();
  s.hasher = &hasher;
  s.progress = &opts.progress;
  s.max_bytes = opts.max_bytes;
  s.expected_size = opts.expected_size;
  if (auto r = transfer(*u, s, opts.timeout, opts.deadline); !r)
    return std::move(r).err();

  std::string digest = hasher.hex_digest();
  if (opts.expected_size && s.received != *opts.expected_size)
    return make_error(errc::operation_failed,
                      fmt::format("download of {} is {} but the catalog says {}; try again, or fix the catalog", u->url,
                                  size_text(s.received), size_text(*opts.expected_size)));
  if (opts.expected_sha256 && digest != *opts.expected_sha256)
    return make_error(errc::operation_failed,
                      fmt::format("download of {} has sha256 {} but the catalog says {}; the bundle or the catalog "
                                  "is wrong, nothing was installed",
                                  u->url, digest, *opts.expected_sha256));
  if (::fsync(fd.get()) != 0)
    return make_error(errc::operation_failed, fmt::format("fsync {}: {}", tmpl, errno_text(errno)));
  return download_result{std::move(file), std::move(digest), s.received};
}

expected<http_reply> http_exchange(const http_request& rq) {
  BANGER_CHECK(rq.max_bytes > 0, "http_exchange: max_bytes must be set");
  auto u = check_url(rq.url);
  if (!u)
    return std::move(u).err();
  for (const auto& line : rq.headers)
    if (line.find_first_of("\r\n") != std::string::npos || line.find(':') == std::string::npos)
      return make_error(errc::bad_request,
                        fmt::format("request header {} is not one \"Name: value\" line", quoted(line)));
  http_reply reply;
  body_sink s;
  s.reply = &reply;
  s.fd = rq.body_fd;
  s.text = rq.body_fd < 0 ? &reply.body : nullptr;
  s.hasher = rq.hasher;
  s.progress = &rq.progress;
  s.max_bytes = rq.max_bytes;
  s.range_from = rq.range_from;
  if (auto r = transfer(*u, s, rq.timeout, rq.deadline, &rq); !r)
    return std::move(r).err();
  if (s.to_sink)
    reply.received = s.received;
  return reply;
}

expected<std::string> fetch_text(const std::string& url, std::uint64_t max_bytes, std::chrono::seconds timeout,
                                 std::chrono::seconds deadline) {
  BANGER_CHECK(max_bytes > 0, "fetch_text: max_bytes must be set");
  auto u = check_url(url);
  if (!u)
    return std::move(u).err();
  std::string text;
  body_sink s;
  s.text = &text;
  s.max_bytes = max_bytes;
  if (auto r = transfer(*u, s, timeout, deadline); !r)
    return std::move(r).err();
  return text;
}

std::optional<long> probe_http(const std::string& url, std::chrono::milliseconds limit) {
  if (!check_url(url))
    return std::nullopt;
  init_curl_once();
  curl_ptr c(curl_easy_init());
  if (!c)
    return std::nullopt;
  auto ms = static_cast<long>(limit.count());
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, ms);
  curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c.get(), CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c.get(), CURLOPT_PROXY, ""); // a guest's port, never through a proxy
  long status = 0;
  if (curl_easy_perform(c.get()) != CURLE_OK ||
      curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status <= 0)
    return std::nullopt;
  return status;
}

} // namespace banger::fetch
