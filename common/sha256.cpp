// See sha256.hpp.
#include "common/sha256.hpp"
#include "common/check.hpp"

#include <cerrno>
#include <fcntl.h>
#include <new>
#include <unistd.h>
#include <utility>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "common/process.hpp"

namespace banger {

namespace {
EVP_MD_CTX* md(void* p) { return static_cast<EVP_MD_CTX*>(p); }
} // namespace

sha256_hasher::sha256_hasher() {
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  if (c == nullptr)
    throw std::bad_alloc();
  if (EVP_DigestInit_ex(c, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(c);
    throw std::bad_alloc(); // only fails when OpenSSL cannot allocate its state
  }
  ctx_ = c;
}

sha256_hasher::sha256_hasher(sha256_hasher&& o) noexcept
  : ctx_(std::exchange(o.ctx_, nullptr)), finished_(o.finished_) {}

sha256_hasher& sha256_hasher::operator=(sha256_hasher&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(md(ctx_));
    ctx_ = std::exchange(o.ctx_, nullptr);
    finished_ = o.finished_;
  }
  return *this;
}

sha256_hasher::~sha256_hasher() { EVP_MD_CTX_free(md(ctx_)); }

void sha256_hasher::update(const void* data, std::size_t len) {
  BANGER_CHECK(ctx_ != nullptr && !finished_, "sha256_hasher::update after hex_digest or move");
  if (len > 0)
    EVP_DigestUpdate(md(ctx_), data, len);
}

std::string sha256_hex(std::string_view data) {
  sha256_hasher h;
  h.update(data);
  return h.hex_digest();
}

std::string sha256_hasher::hex_digest() {
  BANGER_CHECK(ctx_ != nullptr && !finished_, "sha256_hasher::hex_digest called twice or after move");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(md(ctx_), digest, &n);
  finished_ = true;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xf]);
  }
  return out;
}

expected<std::string> sha256_file(const std::filesystem::path& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::operation_failed,
                      fmt::format("open {}: {}", path.string(), errno_text(e)));
  }
  sha256_hasher h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return make_error(errc::operation_failed, fmt::format("read {}: {}", path.string(), errno_text(errno)));
    }
    h.update(buf, static_cast<std::size_t>(n));
  }
  return h.hex_digest();
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64)
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

} // namespace banger
