// Capped, hashed HTTP(S) downloads (libcurl). A download is staged into a temp file created
// inside the destination directory (mode 0600) and hashed as bytes arrive; the transfer is
// aborted the moment the byte count would pass the cap, or up front when Content-Length
// announces more. Size and sha256 are checked at the end; on any failure the temp file is
// unlinked before the call returns, so a failed download leaves nothing behind.
// Only http and https, on the first request and on every redirect (at most 5).
// Blocking; any thread (each call uses its own curl handle).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace banger {
class sha256_hasher;
}

namespace banger::fetch {

/// A file staged by download(). Unlinked on destruction unless released. Move-only.
class staged_file {
public:
  staged_file() = default;
  explicit staged_file(std::filesystem::path p) : path_(std::move(p)) {}
  staged_file(staged_file&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  staged_file& operator=(staged_file&& o) noexcept;
  staged_file(const staged_file&) = delete;
  staged_file& operator=(const staged_file&) = delete;
  ~staged_file() { remove(); }

  const std::filesystem::path& path() const noexcept { return path_; }
  /// Hands the file to the caller, who must now rename or unlink it.
  std::filesystem::path release() noexcept { return std::exchange(path_, {}); }
  /// Unlinks the file now (idempotent).
  void remove() noexcept;

private:
  std::filesystem::path path_;
};

/// Called as bytes arrive: bytes so far, and the announced total (0 when the server sent no
/// Content-Length). Runs on the downloading thread; must not throw.
using progress_fn = std::function<void(std::uint64_t bytes_so_far, std::uint64_t total_or_0)>;

struct download_options {
  std::uint64_t max_bytes = 0;                ///< hard cap on the body; must be > 0
  std::optional<std::uint64_t> expected_size; ///< e.g. the catalog's size
  std::optional<std::string> expected_sha256; ///< lowercase hex, e.g. the catalog's sha256
  std::chrono::seconds timeout{30};           ///< to connect, and how long a transfer may crawl
  std::chrono::seconds deadline{1800};        ///< the whole transfer, connecting included
  progress_fn progress;                       ///< optional
};

/// Slower than this, averaged over a download's `timeout`, is a stall: a transfer that trickles
/// is given up rather than left to run for hours.
inline constexpr long min_bytes_per_second = 1024;

/// The protocols a redirect from `url` may go to: an https URL is never redirected to plain
/// http (what TLS vouched for stays vouched for); an http one may move to either.
const char* redirect_protocols(std::string_view url);

struct download_result {
  staged_file file;   ///< the temp file inside dest_dir; unlinked unless the caller releases it
  std::string sha256; ///< of the body, lowercase hex
  std::uint64_t size = 0;
};

/// Downloads `url` into a temp file inside `dest_dir` (which must exist), enforcing `opts`.
/// Errors: errc::bad_request for a URL that is not http(s) or a redirect to another scheme;
/// errc::not_found for HTTP 404/410 (naming the URL); errc::unavailable "cannot reach HOST: ..."
/// when the server cannot be reached, when it stalls or crawls (under min_bytes_per_second for
/// `timeout`), when the whole transfer outlasts `deadline`, and for HTTP 5xx; errc::operation_failed for a
/// body over the cap, a truncated body, a size or sha256 mismatch, other HTTP errors and local
/// I/O failures. dest_dir holds nothing new after a failure.
expected<download_result> download(const std::string& url, const std::filesystem::path& dest_dir,
                                   const download_options& opts);

/// GETs a small document (a catalog) into memory, with the same checks as download() bar the
/// hash and expected size.
expected<std::string> fetch_text(const std::string& url, std::uint64_t max_bytes,
                                 std::chrono::seconds timeout = std::chrono::seconds(30),
                                 std::chrono::seconds deadline = std::chrono::seconds(300));

/// One request whose HTTP status the caller reads (the registry client: 401 challenges, 206
/// ranges, 404 for unknown manifests). Same transport rules as download(): http(s) only, at most
/// 5 redirects, https never redirected to http, the stall limit and the deadline; a custom
/// Authorization header is not sent on to another host after a redirect (libcurl's rule).
struct http_request {
  std::string url;
  std::vector<std::string> headers; ///< "Name: value", each free of CR and LF
  bool head = false;                ///< HEAD instead of GET
  std::uint64_t range_from = 0;     ///< > 0: asks for "Range: bytes=N-"
  std::uint64_t max_bytes = 0;      ///< cap on a 2xx body (with range_from: on the whole entity); must be > 0
  std::chrono::seconds timeout{30};
  std::chrono::seconds deadline{1800};
  int body_fd = -1;                ///< a 2xx body is written here, else kept in http_reply::body
  sha256_hasher* hasher = nullptr; ///< fed with a 2xx body's bytes
  progress_fn progress;            ///< a 2xx body's bytes (from range_from on a 206) and total
};

struct http_reply {
  long status = 0;
  std::string url;                            ///< the URL that answered, after redirects
  std::map<std::string, std::string> headers; ///< of that response; names lowercase, last value wins
  std::string body;                           ///< a 2xx body without body_fd, or the first 64 KiB of another
  std::uint64_t received = 0;                 ///< bytes of a 2xx body, range_from included on a 206
  /// A 200 to a range request: the server sent the whole entity, so body_fd was truncated to 0
  /// and the hasher restarted before the first byte.
  bool restarted = false;
};

/// Sends `rq`. Transport failures (unreachable, stalled, past the deadline, over the cap, a bad
/// redirect) are errors as download() words them; any HTTP status is a reply.
expected<http_reply> http_exchange(const http_request& rq);

/// Whether something answers HTTP at `url` (http:// or https://): one HEAD, no redirects
/// followed, nothing read but the status line, within `limit`. For `vm ports`, which asks
/// whether a guest's port is a web server: the certificate is not checked (dev servers sign
/// their own) and nothing from the reply is used beyond the status. The status, or nothing.
std::optional<long> probe_http(const std::string& url, std::chrono::milliseconds limit);

/// Checks that `url` is an absolute http:// or https:// URL with a host; returns it normalized.
/// errc::bad_request otherwise.
expected<std::string> check_http_url(std::string_view url);

/// Resolves `ref` (absolute, or relative like "bundles/k.tar.zst" or "/k.tar.zst") against the
/// absolute `base`, as a browser would; the result must pass check_http_url.
expected<std::string> resolve_http_url(std::string_view base, std::string_view ref);

} // namespace banger::fetch
