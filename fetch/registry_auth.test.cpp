// Registry authentication's text: challenges as registries send them (distribution's Bearer and
// Basic), the token URL, and Docker's config.json credentials, with malformed input refused.
#include <boost/test/unit_test.hpp>

#include "fetch/registry_auth.hpp"

namespace banger::fetch {

BOOST_AUTO_TEST_SUITE(registry_auth)

BOOST_AUTO_TEST_CASE(challenges_parse_as_registries_send_them) {
  auto b = parse_auth_challenge(
    R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/py:pull,push")");
  BOOST_TEST_REQUIRE(b.has_value(), (b ? "" : b.err().message));
  BOOST_TEST(b->scheme == "bearer");
  BOOST_TEST(b->params.at("realm") == "https://auth.example/token");
  BOOST_TEST(b->params.at("service") == "registry.example");
  BOOST_TEST(b->params.at("scope") == "repository:team/py:pull,push"); // the comma is inside quotes
  auto basic = parse_auth_challenge(R"(Basic realm="Registry Realm")");
  BOOST_TEST_REQUIRE(basic.has_value());
  BOOST_TEST(basic->scheme == "basic");
  BOOST_TEST(basic->params.at("realm") == "Registry Realm");
  auto odd = parse_auth_challenge(R"(BEARER Realm = "a\"b" , error=insufficient_scope)");
  BOOST_TEST_REQUIRE(odd.has_value(), (odd ? "" : odd.err().message));
  BOOST_TEST(odd->params.at("realm") == "a\"b");
  BOOST_TEST(odd->params.at("error") == "insufficient_scope");
  for (const char* bad : {"", "   ", "Bearer realm", "Bearer realm=", R"(Bearer realm="open)", "Bearer a=1 b=2",
                          "Bearer a=1,a=2", "Be(arer realm=x", "Bearer realm=\"a\x01\""}) {
    BOOST_TEST_CONTEXT(bad) {
      auto r = parse_auth_challenge(bad);
      BOOST_TEST_REQUIRE(!r.has_value());
      BOOST_TEST((r.err().code == errc::bad_request));
      BOOST_TEST(r.err().message.find("WWW-Authenticate") == 0u, r.err().message);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_token_url_carries_service_and_scope_and_stays_on_tls) {
  auto c =
    *parse_auth_challenge(R"(Bearer realm="https://auth.example/token",service="reg x",scope="repository:a/b:pull")");
  BOOST_TEST(*token_url(c, true) == "https://auth.example/token?service=reg%20x&scope=repository%3Aa%2Fb%3Apull");
  BOOST_TEST(*token_url(c, true, std::string("repository:c:pull")) ==
             "https://auth.example/token?service=reg%20x&scope=repository%3Ac%3Apull");
  auto plain = *parse_auth_challenge(R"(Bearer realm="http://127.0.0.1:5001/token")");
  BOOST_TEST(*token_url(plain, false) == "http://127.0.0.1:5001/token");
  auto refused = token_url(plain, true);
  BOOST_TEST_REQUIRE(!refused.has_value());
  BOOST_TEST(refused.err().message.find("not sent in clear") != std::string::npos, refused.err().message);
  BOOST_TEST(!token_url(*parse_auth_challenge(R"(Basic realm="x")"), true).has_value());
  BOOST_TEST(!token_url(*parse_auth_challenge(R"(Bearer service="x")"), true).has_value());
  BOOST_TEST(!token_url(*parse_auth_challenge(R"(Bearer realm="file:///etc/passwd")"), false).has_value());
}

BOOST_AUTO_TEST_CASE(docker_config_credentials_are_found_per_registry) {
  // "alice:s3cr:et" and "bob:pw" in base64.
  const std::string cfg = R"({"auths": {
      "registry.example:5000": {"auth": "YWxpY2U6czNjcjpldA=="},
      "https://index.docker.io/v1/": {"auth": "Ym9iOnB3"},
      "plain.example": {"username": "carol", "password": "pw2"},
      "helper.example": {}
    }, "credsStore": "secretservice"})";
  auto a = docker_config_credentials(cfg, "registry.example:5000");
  BOOST_TEST_REQUIRE(a.has_value());
  BOOST_TEST_REQUIRE(a->has_value());
  BOOST_TEST((*a)->username == "alice");
  BOOST_TEST((*a)->password == "s3cr:et"); // only the first ':' separates
  auto hub = docker_config_credentials(cfg, "docker.io");
  BOOST_TEST_REQUIRE((hub && hub->has_value()));
  BOOST_TEST((*hub)->username == "bob");
  auto c = docker_config_credentials(cfg, "plain.example");
  BOOST_TEST_REQUIRE((c && c->has_value()));
  BOOST_TEST((*c)->password == "pw2");
  BOOST_TEST(!docker_config_credentials(cfg, "helper.example")->has_value());
  BOOST_TEST(!docker_config_credentials(cfg, "elsewhere.example")->has_value());
  BOOST_TEST(!docker_config_credentials("{}", "x")->has_value());
  for (const char* bad : {"not json", "[]", R"({"auths": []})", R"({"auths": {"x": "str"}})",
                          R"({"auths": {"x": {"auth": "!!!"}}})", R"({"auths": {"x": {"auth": "bm9jb2xvbg=="}}})"}) {
    BOOST_TEST_CONTEXT(bad) {
      auto r = docker_config_credentials(bad, "x");
      BOOST_TEST_REQUIRE(!r.has_value());
      BOOST_TEST(r.err().message.find("docker config.json") == 0u, r.err().message);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::fetch
