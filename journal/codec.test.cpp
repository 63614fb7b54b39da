// Tests of the event codec (encode/decode, snapshots) and of the renderings.
#include <boost/test/unit_test.hpp>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <nlohmann/json.hpp>

#include <cstring>

#include "journal/codec.hpp"
#include "journal/render.hpp"
#include "journal/test_events.hpp"
#include "schema/events.capnp.h"

namespace banger::journal {

std::string test::event_with_tag(std::string_view stream, std::uint64_t version, std::uint16_t tag) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::Event>();
  root.setStream(capnp::Text::Reader(stream.data(), stream.size()));
  root.setVersion(version);
  root.setWallTimeNs(42);
  root.setOpId("op-abcdef");
  root.getPayload().initNote().setText("from the future");
  auto offset = capnp::Schema::from<schema::Event::Payload>().getProto().getStruct().getDiscriminantOffset();
  auto data = capnp::toAny(root).getDataSection();
  data[offset * 2] = static_cast<kj::byte>(tag & 0xff);
  data[offset * 2 + 1] = static_cast<kj::byte>(tag >> 8);
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

namespace {

stored_event sample(payload body) {
  stored_event e;
  e.seq = 17;
  e.stream = "vm/web-1";
  e.version = 5;
  e.wall_time_ns = 1700000000123456789;
  e.op_id = "op-1a2b3c";
  e.body = std::move(body);
  return e;
}

void check_same(const stored_event& a, const stored_event& b) {
  BOOST_TEST(a.seq == b.seq);
  BOOST_TEST(a.stream == b.stream);
  BOOST_TEST(a.version == b.version);
  BOOST_TEST(a.wall_time_ns == b.wall_time_ns);
  BOOST_TEST(a.op_id == b.op_id);
  BOOST_TEST(a.body.index() == b.body.index());
}

/// `bytes` copied to an address that is 8-byte aligned plus `shift`.
struct shifted {
  std::string storage;
  std::string_view view;
  shifted(std::string_view bytes, std::size_t shift) {
    storage.resize(bytes.size() + 16);
    char* base = storage.data();
    auto misalign = reinterpret_cast<std::uintptr_t>(base) % 8;
    char* at = base + (misalign ? 8 - misalign : 0) + shift;
    std::memcpy(at, bytes.data(), bytes.size());
    view = std::string_view(at, bytes.size());
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(codec)

BOOST_AUTO_TEST_CASE(round_trips_every_kind) {
  auto started = sample(daemon_started{"0.1.0", 4242, "3f1e-boot"});
  auto d = decode(started.seq, encode(started));
  BOOST_TEST_REQUIRE(d.has_value());
  check_same(*d, started);
  auto& ds = std::get<daemon_started>(d->body);
  BOOST_TEST(ds.version == "0.1.0");
  BOOST_TEST(ds.pid == 4242);
  BOOST_TEST(ds.boot_id == "3f1e-boot");

  auto stopped = sample(daemon_stopped{"sigterm"});
  d = decode(stopped.seq, encode(stopped));
  BOOST_TEST_REQUIRE(d.has_value());
  check_same(*d, stopped);
  BOOST_TEST(std::get<daemon_stopped>(d->body).reason == "sigterm");

  auto n = sample(note{"héllo\twörld"});
  n.op_id.clear();
  n.wall_time_ns = -5; // before the epoch: signed survives
  d = decode(n.seq, encode(n));
  BOOST_TEST_REQUIRE(d.has_value());
  check_same(*d, n);
  BOOST_TEST(std::get<note>(d->body).text == "héllo\twörld");
}

BOOST_AUTO_TEST_CASE(round_trips_artifact_and_vm_kinds_with_every_field) {
  std::vector<payload> all = {artifact_started{"deb:/tmp/k.deb"},
                              artifact_stage{"initramfs"},
                              artifact_ready{"0123456789abcdef", std::string(64, 'a'), 123456789, "6.1 pvh-elf"},
                              artifact_failed{"download", "404 from http://127.0.0.1:1/x"},
                              artifact_removed{"0123456789abcdef"},
                              vm_created{"0a1b2c3d", "default", "v1", "k", "kv1", 2, 512, 2048},
                              vm_configured{4, 1024},
                              vm_starting{"kv2"},
                              resource_intended{"tap", "bgt0a1b2c3d"},
                              resource_acquired{"vmm", "4242", "123 abc"},
                              resource_released{"ip", "172.30.0.5"},
                              vm_running{2400},
                              vm_start_failed{"vmm", "qemu exited"},
                              vm_stopping{"kill"},
                              vm_stopped{"powered off"},
                              vm_deleted{},
                              vm_command{"configure", R"({"vcpus":2})", "conflict: VM a is running"},
                              vm_adopted{4242, "0f5d1c2e-boot"},
                              vm_deleting{},
                              vm_paused{},
                              vm_resumed{},
                              workspace_preparing{"/home/me/repo", "/root/repo"},
                              workspace_prepared{"/home/me/repo", "/root/repo", std::string(40, 'c'), "main",
                                                 std::string(64, 'd'), 7, 4096, true},
                              workspace_prepare_failed{"the work disk is full"},
                              workspace_disk_released{}};
  // Every kind but unknown_event and the daemon's and note's (round-tripped above) is here.
  BOOST_TEST(all.size() + 4 == std::variant_size_v<payload>);
  for (const auto& p : all) {
    auto e = sample(p);
    auto d = decode(e.seq, encode(e));
    BOOST_TEST_REQUIRE(d.has_value());
    check_same(*d, e);
    BOOST_TEST(kind_of(d->body) == kind_of(p));
    // Field by field, through the generic field list the renderers use.
    auto want = fields_of(p), got = fields_of(d->body);
    BOOST_TEST_REQUIRE(want.size() == got.size());
    for (std::size_t i = 0; i < want.size(); ++i)
      BOOST_TEST((want[i].value == got[i].value), want[i].name);
  }
  auto line = to_json_line(sample(artifact_ready{"v1", "h", 42, "s"}));
  BOOST_TEST(
    line.find(
      R"("kind":"artifact_ready","payload":{"version_id":"v1","manifest_sha256":"h","bytes":42,"summary":"s"})") !=
      std::string::npos,
    line);
}

BOOST_AUTO_TEST_CASE(seq_comes_from_the_key_not_the_value) {
  auto e = sample(note{"x"});
  auto d = decode(99, encode(e));
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST(d->seq == 99u);
}

BOOST_AUTO_TEST_CASE(decodes_from_unaligned_memory) {
  for (std::string text : {std::string("short"), std::string(5000, 'z')}) { // stack copy, heap copy
    auto e = sample(note{text});
    auto bytes = encode(e);
    for (std::size_t shift : {0u, 1u, 3u, 7u}) {
      shifted s(bytes, shift);
      auto d = decode(e.seq, s.view);
      BOOST_TEST_REQUIRE(d.has_value(), "shift " << shift);
      BOOST_TEST(std::get<note>(d->body).text == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(unknown_union_member_decodes_as_unknown_event) {
  auto bytes = test::event_with_tag("vm/new", 3, 200);
  auto d = decode(8, bytes);
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST_REQUIRE(std::holds_alternative<unknown_event>(d->body));
  BOOST_TEST(std::get<unknown_event>(d->body).discriminant == 200);
  BOOST_TEST(kind_of(d->body) == "unknown");
  BOOST_TEST(d->stream == "vm/new"); // the envelope still reads
  BOOST_TEST(d->version == 3u);
  BOOST_TEST(d->op_id == "op-abcdef");
}

BOOST_AUTO_TEST_CASE(unknown_event_keeps_its_tag_through_encode) {
  auto e = sample(unknown_event{77});
  auto d = decode(e.seq, encode(e));
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST(std::get<unknown_event>(d->body).discriminant == 77);
}

BOOST_AUTO_TEST_CASE(invalid_bytes_are_errors_naming_the_seq) {
  auto good = encode(sample(note{"some text to make it longer"}));
  std::vector<std::string> bad = {
    "",
    "not capnp at all",              // 16 bytes: a bogus segment table
    "garbage",                       // not a multiple of 8
    std::string(16, '\xff'),         // absurd segment count
    good.substr(0, good.size() - 8), // truncated
    good + std::string(8, '\0'),     // trailing words
  };
  for (auto& b : bad) {
    auto d = decode(1234, b);
    BOOST_TEST_REQUIRE(!d.has_value(), "accepted " << b.size() << " bad bytes");
    BOOST_TEST(d.err().message.find("seq 1234") != std::string::npos, d.err().message);
    BOOST_TEST((d.err().code == errc::operation_failed));
  }
}

BOOST_AUTO_TEST_CASE(snapshots_round_trip) {
  snapshot s{12, std::string("state\0with\xffnuls", 15)};
  auto d = decode_snapshot(encode_snapshot(s));
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST(d->version == 12u);
  BOOST_TEST(d->state == s.state);
  shifted sh(encode_snapshot(s), 5);
  BOOST_TEST(decode_snapshot(sh.view).has_value());
  BOOST_TEST(!decode_snapshot("garbage!").has_value());
  BOOST_TEST(!decode_snapshot(std::string(24, '\xee')).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(render)

BOOST_AUTO_TEST_CASE(kind_names) {
  BOOST_TEST(kind_of(daemon_started{}) == "daemon_started");
  BOOST_TEST(kind_of(daemon_stopped{}) == "daemon_stopped");
  BOOST_TEST(kind_of(note{}) == "note");
  BOOST_TEST(kind_of(unknown_event{}) == "unknown");
}

BOOST_AUTO_TEST_CASE(times_are_rfc3339_utc_with_milliseconds) {
  BOOST_TEST(format_time(0) == "1970-01-01T00:00:00.000Z");
  BOOST_TEST(format_time(1700000000123456789) == "2023-11-14T22:13:20.123Z");
  BOOST_TEST(format_time(951782400999999999) == "2000-02-29T00:00:00.999Z"); // leap day, truncated
  BOOST_TEST(format_time(-1) == "1969-12-31T23:59:59.999Z");
}

BOOST_AUTO_TEST_CASE(json_line_has_the_documented_fields_in_order) {
  auto line = to_json_line(sample(daemon_started{"0.1.0", 7, "b00t"}));
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_TEST(line.rfind(R"({"seq":17,"stream":"vm/web-1","version":5,"time":"2023-11-14T22:13:20.123Z",)", 0) == 0,
             line);
  auto j = nlohmann::json::parse(line);
  BOOST_TEST(j["op_id"] == "op-1a2b3c");
  BOOST_TEST(j["kind"] == "daemon_started");
  BOOST_TEST(j["payload"]["pid"] == 7);
  BOOST_TEST(j["payload"]["boot_id"] == "b00t");
  BOOST_TEST(j["payload"]["version"] == "0.1.0");
}

BOOST_AUTO_TEST_CASE(json_line_survives_invalid_utf8) {
  auto line = to_json_line(sample(note{"bad \xff\xfe bytes"}));
  auto j = nlohmann::json::parse(line);
  BOOST_TEST(j["kind"] == "note");
  BOOST_TEST(j["payload"]["text"].get<std::string>().find("bytes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(text_line_quotes_values_that_need_it) {
  auto line = to_text_line(sample(note{"two words \"quoted\""}));
  BOOST_TEST(line == R"(17  2023-11-14T22:13:20.123Z  vm/web-1@5  note  op-1a2b3c  text="two words \"quoted\"")", line);
  auto e = sample(daemon_stopped{"sigterm"});
  e.op_id.clear();
  BOOST_TEST(to_text_line(e) == "17  2023-11-14T22:13:20.123Z  vm/web-1@5  daemon_stopped  -  reason=sigterm");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::journal
