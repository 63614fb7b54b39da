// The blob cache (fetch/blob_cache.hpp) with an in-test fetch function standing in for the
// registry: cache hits, one fetch per digest across threads, resumed and corrupt partials,
// refused digests, and prune (dry run, busy blobs, a pull reading through a prune).
#include <atomic>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "common/sha256.hpp"
#include "fetch/blob_cache.hpp"
#include "tests/support/proc.hpp"

namespace fs = std::filesystem;
using namespace banger;
using fetch::blob_cache;
using fetch::blob_descriptor;

namespace {

blob_descriptor descriptor_of(const std::string& data) {
  return {"application/vnd.oci.image.layer.v1.tar", "sha256:" + sha256_hex(data), data.size()};
}

void put(const fs::path& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    auto n = ::write(fd, s.data(), s.size());
    if (n <= 0)
      return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// What registry_client::fetch_blob does, from memory: appends what `fd` lacks, then checks the
/// whole; counts its calls and what it was told the partial held.
struct fake_registry {
  std::string data;
  std::atomic<int> calls{0};
  std::uint64_t last_have = 0;
  std::size_t break_after = std::string::npos; ///< bytes to write before "the connection drops"
  std::string want;                            ///< the digest's hex the whole must have; empty: data's

  blob_cache::fetch_fn fn() {
    return [this](int fd, std::uint64_t have) -> expected<void> {
      ++calls;
      last_have = have;
      if (::lseek(fd, static_cast<off_t>(have), SEEK_SET) < 0)
        return make_error(errc::operation_failed, "lseek");
      auto rest = std::string_view(data).substr(std::min<std::size_t>(have, data.size()));
      if (break_after != std::string::npos) {
        write_all(fd, rest.substr(0, break_after));
        return make_error(errc::unavailable, "connection reset");
      }
      if (!write_all(fd, rest))
        return make_error(errc::operation_failed, "write");
      auto whole = read_file(fs::path("/proc/self/fd") / std::to_string(fd));
      if (!whole || sha256_hex(*whole) != (want.empty() ? sha256_hex(data) : want))
        return make_error(errc::operation_failed, "digest mismatch");
      return {};
    };
  }
};

std::string content_of(int fd) {
  auto s = read_file(fs::path("/proc/self/fd") / std::to_string(fd));
  return s ? *s : "<unreadable>";
}

} // namespace

BOOST_AUTO_TEST_SUITE(blob_cache_suite)

BOOST_AUTO_TEST_CASE(a_blob_is_fetched_once_and_then_served_from_the_cache) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = std::string(300000, 'x') + "end";
  auto d = descriptor_of(reg.data);

  auto first = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(first.has_value(), (first ? "" : first.err().message));
  BOOST_TEST(first->downloaded);
  BOOST_TEST(content_of(first->fd.get()) == reg.data);
  BOOST_TEST(first->path == dir.path / "blobs" / "sha256" / d.digest.substr(7));
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(first->path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0444u);
  BOOST_TEST(!fs::exists(dir.path / "blobs" / "partial" / d.digest.substr(7)));

  auto again = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(again.has_value());
  BOOST_TEST(!again->downloaded);
  BOOST_TEST(reg.calls == 1);
}

BOOST_AUTO_TEST_CASE(two_threads_wanting_one_digest_fetch_it_once) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = std::string(1 << 20, 'y');
  auto d = descriptor_of(reg.data);
  auto slow = [&](int fd, std::uint64_t have) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // the other thread arrives meanwhile
    return reg.fn()(fd, have);
  };
  expected<fetch::cached_blob> a = make_error(errc::internal, "unset"), b = make_error(errc::internal, "unset");
  std::thread t1([&] { a = cache.get(d, slow); });
  std::thread t2([&] { b = cache.get(d, slow); });
  t1.join();
  t2.join();
  BOOST_TEST_REQUIRE(a.has_value());
  BOOST_TEST_REQUIRE(b.has_value());
  BOOST_TEST(reg.calls == 1);
  BOOST_TEST(a->downloaded != b->downloaded); // one fetched, the other waited and found it
  BOOST_TEST(content_of(a->fd.get()) == reg.data);
  BOOST_TEST(content_of(b->fd.get()) == reg.data);
}

BOOST_AUTO_TEST_CASE(a_broken_off_download_resumes_where_it_stopped) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = std::string(100000, 'a') + std::string(100000, 'b');
  auto d = descriptor_of(reg.data);
  reg.break_after = 120000;
  auto broken = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(!broken.has_value());
  BOOST_TEST((broken.err().code == errc::unavailable));
  auto partial = dir.path / "blobs" / "partial" / d.digest.substr(7);
  BOOST_TEST(fs::file_size(partial) == 120000u); // kept, never under the final name
  BOOST_TEST(!fs::exists(dir.path / "blobs" / "sha256" / d.digest.substr(7)));

  reg.break_after = std::string::npos;
  auto resumed = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(resumed.has_value(), (resumed ? "" : resumed.err().message));
  BOOST_TEST(reg.last_have == 120000u);
  BOOST_TEST(resumed->resumed_from == 120000u);
  BOOST_TEST(content_of(resumed->fd.get()) == reg.data);
  BOOST_TEST(!fs::exists(partial));
}

BOOST_AUTO_TEST_CASE(a_partial_of_wrong_bytes_is_fetched_again_from_nothing) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = std::string(50000, 'g');
  auto d = descriptor_of(reg.data);
  fs::create_directories(dir.path / "blobs" / "partial");
  put(dir.path / "blobs" / "partial" / d.digest.substr(7), std::string(20000, 'Z'));
  auto got = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(got.has_value(), (got ? "" : got.err().message));
  BOOST_TEST(reg.calls == 2);
  BOOST_TEST(reg.last_have == 0u);
  BOOST_TEST(got->resumed_from == 0u);
  BOOST_TEST(content_of(got->fd.get()) == reg.data);
}

BOOST_AUTO_TEST_CASE(a_blob_that_never_verifies_leaves_nothing) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = "the registry sends this";
  auto d = descriptor_of("but the manifest promised this");
  d.size = reg.data.size();
  reg.want = d.digest.substr(7);
  auto got = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(!got.has_value());
  BOOST_TEST((got.err().code == errc::operation_failed));
  BOOST_TEST(!fs::exists(dir.path / "blobs" / "sha256" / d.digest.substr(7)));
  BOOST_TEST(!fs::exists(dir.path / "blobs" / "partial" / d.digest.substr(7)));

  for (const char* bad : {"sha256:../../etc/passwd", "md5:0123", "sha256:ABCDEF"}) {
    blob_descriptor hostile{"x", bad, 3};
    auto r = cache.get(hostile, reg.fn());
    BOOST_TEST_REQUIRE(!r.has_value(), bad);
    BOOST_TEST((r.err().code == errc::bad_request));
  }
}

BOOST_AUTO_TEST_CASE(a_stored_blob_of_the_wrong_size_is_never_used) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = "twelve bytes";
  auto d = descriptor_of(reg.data);
  fs::create_directories(dir.path / "blobs" / "sha256");
  put(dir.path / "blobs" / "sha256" / d.digest.substr(7), "short");
  auto got = cache.get(d, reg.fn());
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST(got->downloaded);
  BOOST_TEST(content_of(got->fd.get()) == reg.data);
}

BOOST_AUTO_TEST_CASE(prune_frees_what_no_pull_holds_and_a_dry_run_only_counts) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry one, two, three;
  one.data = std::string(1000, '1');
  two.data = std::string(2000, '2');
  three.data = std::string(4000, '3');
  auto held = cache.get(descriptor_of(one.data), one.fn()); // a running pull reads this one
  BOOST_TEST_REQUIRE(held.has_value());
  {
    auto b = cache.get(descriptor_of(two.data), two.fn());
    BOOST_TEST_REQUIRE(b.has_value());
  }
  three.break_after = 500; // a broken-off download
  BOOST_TEST(!cache.get(descriptor_of(three.data), three.fn()).has_value());

  auto dry = cache.prune(true);
  BOOST_TEST_REQUIRE(dry.has_value());
  BOOST_TEST(dry->blobs == 1u);
  BOOST_TEST(dry->partials == 1u);
  BOOST_TEST(dry->bytes == 2500u);
  BOOST_TEST(dry->busy == 1u);
  BOOST_TEST(fs::exists(dir.path / "blobs" / "sha256" / descriptor_of(two.data).digest.substr(7)));

  auto done = cache.prune(false);
  BOOST_TEST_REQUIRE(done.has_value());
  BOOST_TEST(done->bytes == 2500u);
  BOOST_TEST(done->busy == 1u);
  BOOST_TEST(!fs::exists(dir.path / "blobs" / "sha256" / descriptor_of(two.data).digest.substr(7)));
  BOOST_TEST(!fs::exists(dir.path / "blobs" / "partial" / descriptor_of(three.data).digest.substr(7)));
  BOOST_TEST(fs::exists(held->path));
  BOOST_TEST(content_of(held->fd.get()) == one.data);

  held = make_error(errc::internal, "closed"); // the pull is done with it
  auto after = cache.prune(false);
  BOOST_TEST_REQUIRE(after.has_value());
  BOOST_TEST(after->blobs == 1u);
  BOOST_TEST(after->busy == 0u);
  BOOST_TEST(fs::is_empty(dir.path / "blobs" / "sha256"));
  BOOST_TEST(fs::is_empty(dir.path / "blobs" / "partial")); // lock files of finished downloads too
}

BOOST_AUTO_TEST_CASE(a_download_running_during_a_prune_completes) {
  test::temp_dir dir{"blob-cache"};
  blob_cache cache(dir.path / "blobs");
  fake_registry reg;
  reg.data = std::string(1 << 20, 'p');
  auto d = descriptor_of(reg.data);
  std::atomic<bool> writing{false}, pruned{false};
  auto slow = [&](int fd, std::uint64_t have) {
    writing = true;
    while (!pruned)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return reg.fn()(fd, have);
  };
  expected<fetch::cached_blob> got = make_error(errc::internal, "unset");
  std::thread pull([&] { got = cache.get(d, slow); });
  while (!writing)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto rep = cache.prune(false);
  pruned = true;
  pull.join();
  BOOST_TEST_REQUIRE(rep.has_value());
  BOOST_TEST(rep->busy == 1u); // the download in progress was left alone
  BOOST_TEST(rep->partials == 0u);
  BOOST_TEST_REQUIRE(got.has_value(), (got ? "" : got.err().message));
  BOOST_TEST(content_of(got->fd.get()) == reg.data);
}

BOOST_AUTO_TEST_SUITE_END()
