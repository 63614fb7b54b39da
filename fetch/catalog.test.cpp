// Catalog parsing and validation. URLs here are only parsed, never fetched.
#include "fetch/catalog.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "fetch/test_support.hpp"

using namespace banger;
using namespace banger::fetch;
using banger::fetch::test_support::why;
using nlohmann::json;

namespace {

constexpr const char* base = "http://127.0.0.1:8123/kernels/catalog.json";
const std::string sha(64, 'a');

json good_entry(std::string name = "debian-cloud") {
  return json{{"name", name},
              {"version", "6.1.0-56-cloud-amd64"},
              {"url", "bundles/" + name + ".tar.zst"},
              {"sha256", sha},
              {"size", 1234},
              {"arch", "x86_64"}};
}

std::string doc(std::vector<json> entries) { return json{{"schema", 1}, {"kernels", entries}}.dump(); }

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Parses a catalog holding `e` and expects a bad_request whose message mentions `part`.
void expect_bad(const json& e, const std::string& part) {
  auto c = parse_catalog(doc({e}), base);
  BOOST_REQUIRE_MESSAGE(!c.has_value(), "accepted " << e.dump());
  BOOST_TEST(static_cast<int>(c.err().code) == static_cast<int>(errc::bad_request));
  BOOST_TEST_MESSAGE(c.err().message);
  BOOST_TEST(has(c.err().message, part), c.err().message << " lacks " << part);
}

} // namespace

BOOST_AUTO_TEST_SUITE(catalog_parsing)

BOOST_AUTO_TEST_CASE(parses_and_resolves_urls) {
  auto abs = good_entry("abs");
  abs["url"] = "https://mirror.example/k/abs.tar.zst";
  auto rooted = good_entry("rooted");
  rooted["url"] = "/b/rooted.tar.zst";
  auto up = good_entry("up");
  up["url"] = "../other/up.tar.zst";
  auto extra = good_entry("extra");
  extra["comment"] = "unknown fields are ignored";
  auto c = parse_catalog(doc({good_entry(), abs, rooted, up, extra}), base);
  BOOST_REQUIRE_MESSAGE(c.has_value(), why(c));
  BOOST_TEST(c->url == base);
  BOOST_REQUIRE(c->kernels.size() == 5u);
  const auto& k = c->kernels[0];
  BOOST_TEST(k.name == "debian-cloud");
  BOOST_TEST(k.version == "6.1.0-56-cloud-amd64");
  BOOST_TEST(k.url == "http://127.0.0.1:8123/kernels/bundles/debian-cloud.tar.zst");
  BOOST_TEST(k.sha256 == sha);
  BOOST_TEST(k.size == 1234u);
  BOOST_TEST(k.arch == "x86_64");
  BOOST_TEST(c->kernels[1].url == "https://mirror.example/k/abs.tar.zst");
  BOOST_TEST(c->kernels[2].url == "http://127.0.0.1:8123/b/rooted.tar.zst");
  BOOST_TEST(c->kernels[3].url == "http://127.0.0.1:8123/other/up.tar.zst");
}

BOOST_AUTO_TEST_CASE(find_by_name_and_arch) {
  auto arm = good_entry();
  arm["arch"] = "aarch64";
  auto c = parse_catalog(doc({good_entry(), good_entry("minimal"), arm}), base);
  BOOST_REQUIRE_MESSAGE(c.has_value(), why(c));
  auto k = c->find("minimal", "x86_64");
  BOOST_REQUIRE(k.has_value());
  BOOST_TEST(k->name == "minimal");
  auto a = c->find("debian-cloud", "aarch64");
  BOOST_REQUIRE(a.has_value());
  BOOST_TEST(a->arch == "aarch64");

  auto missing = c->find("nope", "x86_64");
  BOOST_REQUIRE(!missing.has_value());
  BOOST_TEST(static_cast<int>(missing.err().code) == static_cast<int>(errc::not_found));
  BOOST_TEST(has(missing.err().message, base));
  BOOST_TEST(has(missing.err().message, "debian-cloud, minimal"));

  auto other_arch = c->find("minimal", "aarch64");
  BOOST_REQUIRE(!other_arch.has_value());
  BOOST_TEST(has(other_arch.err().message, "only for x86_64"));
}

BOOST_AUTO_TEST_CASE(rejects_malformed_documents) {
  for (std::string text : {"", "not json", "[]", "{\"kernels\": []}", "{\"schema\": 1}",
                           "{\"schema\": 1, \"kernels\": {}}", "{\"schema\": \"1\", \"kernels\": []}"}) {
    auto c = parse_catalog(text, base);
    BOOST_TEST(!c.has_value(), "accepted " << text);
    if (!c)
      BOOST_TEST(has(c.err().message, base));
  }
  auto newer = parse_catalog(R"({"schema": 2, "kernels": []})", base);
  BOOST_REQUIRE(!newer.has_value());
  BOOST_TEST(has(newer.err().message, "upgrade banger"));

  auto empty = parse_catalog(R"({"schema": 1, "kernels": []})", base);
  BOOST_REQUIRE(empty.has_value());
  BOOST_TEST(empty->kernels.empty());
}

BOOST_AUTO_TEST_CASE(rejects_bad_catalog_urls) {
  for (const char* url : {"", "catalog.json", "file:///etc/catalog.json", "ftp://127.0.0.1/c.json", "http://"}) {
    auto c = parse_catalog(doc({}), url);
    BOOST_TEST(!c.has_value(), "accepted catalog URL " << url);
  }
}

BOOST_AUTO_TEST_CASE(rejects_bad_fields) {
  for (const char* f : {"name", "version", "url", "sha256", "size", "arch"}) {
    auto e = good_entry();
    e.erase(f);
    expect_bad(e, std::string(f) + " is missing");
  }
  for (const char* name : {"", "Debian", "-lead", "trail-", "dot.ted", "under_score", "sp ace", "a/b", "../x"}) {
    auto e = good_entry();
    e["name"] = name;
    expect_bad(e, "kernel name");
  }
  {
    auto e = good_entry();
    e["name"] = std::string(64, 'a');
    expect_bad(e, "kernel name");
    e["name"] = 7;
    expect_bad(e, "name must be a string");
  }
  for (const char* v : {"", "6.1 cloud", "6.1/x", "v\n1"}) {
    auto e = good_entry();
    e["version"] = v;
    expect_bad(e, "version");
  }
  for (std::string s : {std::string(64, 'A'), std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g')}) {
    auto e = good_entry();
    e["sha256"] = s;
    expect_bad(e, "sha256");
  }
  for (json size : {json(0), json(-5), json(1.5), json("12"), json(max_bundle_bytes + 1)}) {
    auto e = good_entry();
    e["size"] = size;
    expect_bad(e, "size");
  }
  for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/k.tar.zst", "gopher://127.0.0.1/k", ""}) {
    auto e = good_entry();
    e["url"] = url;
    expect_bad(e, "debian-cloud");
  }
  for (const char* arch : {"", "X86_64", "x86-64", "averyveryverylongarch"}) {
    auto e = good_entry();
    e["arch"] = arch;
    expect_bad(e, "arch");
  }
  expect_bad(json::array(), "kernels[0]");
}

BOOST_AUTO_TEST_CASE(rejects_duplicates) {
  auto c = parse_catalog(doc({good_entry(), good_entry()}), base);
  BOOST_REQUIRE(!c.has_value());
  BOOST_TEST(has(c.err().message, "listed twice"));
}

BOOST_AUTO_TEST_CASE(exported_entries_parse_back) {
  catalog_entry a{"demo", "6.1.0-1", "demo.tar.zst", sha, 4096, "x86_64"};
  catalog_entry b{"other", "1.0", "https://mirror.example/other.tar.zst", std::string(64, 'b'), 1, "x86_64"};
  auto one = catalog_entry_json(a);
  BOOST_REQUIRE_MESSAGE(one.has_value(), why(one));
  auto j = json::parse(*one);
  BOOST_TEST(j["name"] == "demo");
  BOOST_TEST(j["size"] == 4096);
  BOOST_TEST(one->find("\"name\"") < one->find("\"version\"")); // fields in the documented order

  auto whole = catalog_json({a, b});
  BOOST_REQUIRE_MESSAGE(whole.has_value(), why(whole));
  auto c = parse_catalog(*whole, base);
  BOOST_REQUIRE_MESSAGE(c.has_value(), why(c));
  BOOST_REQUIRE(c->kernels.size() == 2u);
  a.url = "http://127.0.0.1:8123/kernels/demo.tar.zst";
  BOOST_TEST((c->kernels[0] == a));
  BOOST_TEST((c->kernels[1] == b));

  catalog_entry bad = a;
  bad.name = "Bad Name";
  BOOST_TEST(!catalog_entry_json(bad).has_value());
  bad = a;
  bad.size = 0;
  BOOST_TEST(!catalog_json({bad}).has_value());
  BOOST_TEST(!catalog_json({a, a}).has_value());
}

BOOST_AUTO_TEST_CASE(kernel_names) {
  for (const char* ok : {"a", "debian-cloud", "k6-1", "0"})
    BOOST_TEST(check_kernel_name(ok).has_value(), ok);
  for (const char* bad : {"", "-a", "a-", "A", "a.b", "a_b"})
    BOOST_TEST(!check_kernel_name(bad).has_value(), bad);
}

BOOST_AUTO_TEST_SUITE_END()
