// parse_oci_reference: the forms users and registries write, Docker Hub's short forms, and
// the malformed ones refused with a message that says what is wrong.
#include <boost/test/unit_test.hpp>

#include "fetch/oci_reference.hpp"

namespace banger::fetch {

namespace {

const std::string digest = "sha256:" + std::string(64, 'a');

struct good_case {
  std::string text, registry, repository, tag, digest, canonical;
};

} // namespace

BOOST_AUTO_TEST_SUITE(oci_reference_parsing)

BOOST_AUTO_TEST_CASE(references_parse_into_registry_repository_tag_and_digest) {
  const std::vector<good_case> cases{
    {"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest"},
    {"python:3.12", "docker.io", "library/python", "3.12", "", "docker.io/library/python:3.12"},
    {"team/python:3.12-slim", "docker.io", "team/python", "3.12-slim", "", "docker.io/team/python:3.12-slim"},
    {"docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest"},
    {"index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", "", "docker.io/library/busybox:1"},
    {"registry.example:5000/team/python:3.12", "registry.example:5000", "team/python", "3.12", "",
     "registry.example:5000/team/python:3.12"},
    {"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest"},
    {"localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest", "", "localhost:5000/a/b/c:latest"},
    {"127.0.0.1:5000/deb@" + digest, "127.0.0.1:5000", "deb", "", digest, "127.0.0.1:5000/deb@" + digest},
    {"reg.example/a:v1@" + digest, "reg.example", "a", "v1", digest, "reg.example/a:v1@" + digest},
    {"[::1]:5000/x", "[::1]:5000", "x", "latest", "", "[::1]:5000/x:latest"},
    {"a.b/x__y.z-w---v:V_1.0-rc", "a.b", "x__y.z-w---v", "V_1.0-rc", "", "a.b/x__y.z-w---v:V_1.0-rc"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.text) {
      auto r = parse_oci_reference(c.text);
      BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
      BOOST_TEST(r->registry == c.registry);
      BOOST_TEST(r->repository == c.repository);
      BOOST_TEST(r->tag == c.tag);
      BOOST_TEST(r->digest == c.digest);
      BOOST_TEST(r->str() == c.canonical);
      // The canonical form reads back as itself.
      auto again = parse_oci_reference(r->str());
      BOOST_TEST_REQUIRE(again.has_value());
      BOOST_TEST(again->str() == c.canonical);
    }
  }
  BOOST_TEST(parse_oci_reference("busybox")->api_host() == "registry-1.docker.io");
  BOOST_TEST(parse_oci_reference("localhost:5000/x")->api_host() == "localhost:5000");
}

BOOST_AUTO_TEST_CASE(malformed_references_are_refused_saying_why) {
  const std::vector<std::pair<std::string, std::string>> cases{
    {"", "empty"},
    {"Busybox", "lowercase"},
    {"reg.example/Team/app", "lowercase"},
    {"a//b", "empty path component"},
    {"a/", "empty path component"},
    {"reg.example/", "empty path component"},
    {"-a", "must be lowercase letters"},
    {"a..b", "must be lowercase letters"},
    {"a___b", "must be lowercase letters"},
    {"app:", "tag"},
    {"app:.x", "tag"},
    {"app:" + std::string(129, 'x'), "tag"},
    {"app@sha512:" + std::string(128, 'a'), "not sha256"},
    {"app@sha256:" + std::string(63, 'a'), "64 lowercase hex"},
    {"app@sha256:" + std::string(64, 'A'), "64 lowercase hex"},
    {"app@" + std::string(64, 'a'), "ALGORITHM:HEX"},
    {"reg.example:0/a", "HOST[:PORT]"},
    {"reg.example:70000/a", "HOST[:PORT]"},
    {"reg..example/a", "HOST[:PORT]"},
    {"-reg.example/a", "HOST[:PORT]"},
    {"reg.example:/a", "HOST[:PORT]"},
    {"a b", "space"},
    {"a\nb", "control"},
    {"caf\xc3\xa9", "non-ASCII"},
    {"reg.example/" + std::string(250, 'a'), "over 255"},
    {std::string(600, 'a'), "too long"},
  };
  for (const auto& [text, why] : cases) {
    BOOST_TEST_CONTEXT(text) {
      auto r = parse_oci_reference(text);
      BOOST_TEST_REQUIRE(!r.has_value(), (r ? r->str() : std::string()));
      BOOST_TEST((r.err().code == errc::bad_request));
      BOOST_TEST(r.err().message.find(why) != std::string::npos, r.err().message);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::fetch
