#include "actors/image/artifact.hpp"

#include <boost/test/unit_test.hpp>

using namespace banger;
using namespace banger::actors;

namespace {

struct stream {
  artifact_state s;
  std::uint64_t v = 0;
  void add(journal::payload p, std::int64_t t = 1000) {
    journal::stored_event e;
    e.version = ++v;
    e.wall_time_ns = t;
    e.body = std::move(p);
    s = apply(std::move(s), e);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(artifact_core)

BOOST_AUTO_TEST_CASE(names_are_validated) {
  BOOST_TEST(validate_artifact_name(artifact_kind::image, "default").has_value());
  BOOST_TEST(validate_artifact_name(artifact_kind::kernel, "cloud-6.1_x.y").has_value());
  for (std::string bad : std::vector<std::string>{"", "-x", ".x", "UPPER", "a/b", "a b", "../x", std::string(64, 'a'),
                                                  std::string("a\0b", 3)}) {
    auto r = validate_artifact_name(artifact_kind::image, bad);
    BOOST_TEST(!r.has_value(), bad);
    if (!r)
      BOOST_TEST((r.err().code == errc::bad_request));
  }
}

BOOST_AUTO_TEST_CASE(a_build_adds_a_current_version_and_a_rebuild_adds_another) {
  stream st;
  auto start = decide_start(st.s, "busybox");
  BOOST_REQUIRE(start.has_value());
  st.add(start->front());
  BOOST_TEST(st.s.in_progress.value_or("") == "busybox");
  // A second start while one runs is refused (the actor queues instead of asking).
  BOOST_TEST(!decide_start(st.s, "busybox").has_value());
  st.add(journal::artifact_stage{"rootfs"});
  BOOST_TEST(st.s.stage == "rootfs");
  st.add(journal::artifact_ready{"aaaa", "sha-a", 100, "first"}, 5);
  BOOST_TEST(!st.s.in_progress.has_value());
  BOOST_TEST(st.s.current == "aaaa");
  BOOST_REQUIRE(st.s.current_version() != nullptr);
  BOOST_TEST(st.s.current_version()->source == "busybox");
  BOOST_TEST(st.s.current_version()->created_ns == 5);

  st.add(journal::artifact_started{"dir:/x"});
  st.add(journal::artifact_ready{"bbbb", "sha-b", 200, "second"});
  BOOST_TEST(st.s.current == "bbbb");
  BOOST_TEST(st.s.versions.size() == 2u); // the old version stays for VMs made from it
  BOOST_TEST(st.s.stream_version == 5u);
}

BOOST_AUTO_TEST_CASE(a_failure_keeps_the_previous_version) {
  stream st;
  st.add(journal::artifact_started{"busybox"});
  st.add(journal::artifact_ready{"aaaa", "sha-a", 100, "first"});
  st.add(journal::artifact_started{"debootstrap:bookworm"});
  st.add(journal::artifact_stage{"debootstrap"});
  st.add(journal::artifact_failed{"debootstrap", "mirror unreachable"});
  BOOST_TEST(st.s.current == "aaaa");
  BOOST_TEST(!st.s.in_progress.has_value());
  BOOST_TEST(st.s.last_failure.value_or("") == "debootstrap: mirror unreachable");
}

BOOST_AUTO_TEST_CASE(remove_rules) {
  stream st;
  auto none = decide_remove(st.s, artifact_kind::kernel, "k", 0);
  BOOST_REQUIRE(!none.has_value());
  BOOST_TEST((none.err().code == errc::not_found));
  st.add(journal::artifact_started{"apt:x"});
  BOOST_TEST((decide_remove(st.s, artifact_kind::kernel, "k", 0).err().code == errc::conflict));
  st.add(journal::artifact_ready{"aaaa", "sha-a", 100, "k"});
  auto used = decide_remove(st.s, artifact_kind::kernel, "k", 2);
  BOOST_REQUIRE(!used.has_value());
  BOOST_TEST(used.err().message.find("used by 2 VM") != std::string::npos);
  auto ok = decide_remove(st.s, artifact_kind::kernel, "k", 0);
  BOOST_REQUIRE(ok.has_value());
  st.add(ok->front());
  BOOST_TEST(st.s.current.empty());
  BOOST_TEST(st.s.versions.empty());
}

BOOST_AUTO_TEST_SUITE_END()
