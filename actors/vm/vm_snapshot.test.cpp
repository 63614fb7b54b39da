// VM snapshots: the encoding round-trips every field, and journal::fold_stream with snapshots
// folds to exactly what the plain fold gives, at every prefix of random VM histories built from
// decide() and the effects a start, stop and delete record; snapshots it cannot vouch for
// (corrupt, another format, ahead of the stream, another VM) are ignored, and long tails refresh.
#include <boost/test/unit_test.hpp>

#include <random>

#include <fmt/core.h>

#include "actors/vm/vm_snapshot.hpp"
#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/raw_journal.hpp"

using namespace banger;
using namespace banger::actors;

namespace {

/// vm_state without the snapshot functions: fold_stream folds it the plain way.
struct plain_vm {
  vm_state s;
};
plain_vm apply(plain_vm p, const journal::stored_event& e) { return {apply(std::move(p.s), e)}; }

static_assert(journal::snapshotted_state<vm_state>);
static_assert(!journal::snapshotted_state<plain_vm>);

/// Every field, for comparing states.
std::string dump(const vm_state& s) {
  auto out =
    fmt::format("v={} phase={} name={} id={} image={}@{} kernel={}@{} shape={}/{}/{} created={} since={} "
                "error={} boot_ms={} resources=[",
                s.stream_version, to_string(s.phase), s.name, s.id, s.image, s.image_version, s.kernel,
                s.kernel_version, s.vcpus, s.memory_mib, s.disk_mib, s.created_ns, s.since_ns, s.last_error, s.boot_ms);
  for (const auto& r : s.resources)
    out += fmt::format("{{{} {} {} {}}}", to_string(r.kind), r.id, r.detail, r.acquired);
  const auto& w = s.workspace;
  return out +
         fmt::format("] workspace={}|{}|{}|{}|{}|{}|{}|{} pending={}", w.host_path, w.guest_path, w.head, w.branch,
                     w.digest, w.files, w.bytes, w.prepared_ns, s.workspace_pending()) +
         fmt::format(" untracked={} pending_path={} released={}", w.include_untracked, s.workspace_pending_path,
                     s.workspace_disk_released);
}

vm_state plain_fold(const journal::journal& j, const std::string& name) {
  plain_vm p;
  p.s.name = name;
  return journal::fold_stream(j, vm_stream(name), std::move(p)).s;
}

vm_state snap_fold(const journal::journal& j, const std::string& name) {
  vm_state s;
  s.name = name;
  return journal::fold_stream(j, vm_stream(name), std::move(s));
}

std::unique_ptr<journal::journal> open_ok(const std::filesystem::path& dir, bool read_only = false) {
  auto j = journal::journal::open(dir, journal::options{read_only, {}});
  BOOST_TEST_REQUIRE(j.has_value(), (j ? std::string() : j.err().message));
  return std::move(*j);
}

/// Random VM lives: commands through decide() (refusals recorded too), then what the actor's
/// workers record for them: intents and facts, running or a failed start, releases, stopped,
/// deleted, adoption. Text fields carry NULs and bytes >= 0x80.
struct history {
  std::mt19937_64 rng;
  vm_state s;
  std::vector<journal::payload> out;

  history(std::uint64_t seed, std::string name) : rng(seed) { s.name = std::move(name); }

  std::uint64_t pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); }
  std::string text() {
    std::string t(pick(12), '\0');
    for (auto& c : t)
      c = static_cast<char>(pick(256));
    return t;
  }
  /// For fields that travel in a command's JSON arguments: ASCII, NULs included.
  std::string ascii() {
    std::string t(pick(12), '\0');
    for (auto& c : t)
      c = static_cast<char>(pick(128));
    return t;
  }
  /// Appends `p` to the history and folds it into the model state.
  void emit(journal::payload p) {
    journal::stored_event e;
    e.stream = vm_stream(s.name);
    e.version = s.stream_version + 1;
    e.body = p;
    s = apply(std::move(s), e);
    out.push_back(std::move(p));
  }
  void command(journal::vm_command c) {
    auto d = decide(s, c);
    if (!d)
      c.refused = refusal_text(d.err());
    emit(c);
    if (d)
      for (auto& p : *d)
        emit(std::move(p));
  }
  void release(bool per_vm_too) {
    auto held = s.resources;
    for (auto it = held.rbegin(); it != held.rend(); ++it)
      if (per_vm_too || !per_vm(it->kind))
        emit(journal::resource_released{std::string(to_string(it->kind)), it->id});
  }
  void effects() {
    switch (s.phase) {
    case vm_phase::starting: {
      for (auto kind : {resource_kind::overlay, resource_kind::work_disk, resource_kind::ip, resource_kind::tap,
                        resource_kind::nat, resource_kind::vmm, resource_kind::sockets}) {
        if (s.find(kind) && s.find(kind)->acquired)
          continue;
        bool id_later = kind == resource_kind::ip || kind == resource_kind::vmm;
        std::string id = fmt::format("{}-{}", to_string(kind), pick(1000));
        emit(journal::resource_intended{std::string(to_string(kind)), id_later ? std::string() : id});
        if (pick(8) == 0)
          break; // the start fails before the fact
        emit(journal::resource_acquired{std::string(to_string(kind)), id, text()});
      }
      if (pick(4) == 0) {
        emit(journal::vm_start_failed{"stage-" + std::to_string(pick(5)), text()});
        release(false);
      } else {
        emit(journal::vm_running{pick(100000)});
      }
      break;
    }
    case vm_phase::stopping:
      release(false);
      emit(journal::vm_stopped{
        std::vector<std::string>{"stopped", "killed", "powered off", "vmm exited", "interrupted"}[pick(5)]});
      break;
    case vm_phase::deleting:
      if (pick(6) == 0)
        break; // the delete is interrupted; a later one finishes it
      release(true);
      emit(journal::vm_deleted{});
      break;
    default: break;
    }
  }
  void step() {
    vm_cmd::create r;
    r.id = ascii();
    r.image = ascii();
    r.image_version = "img-" + ascii();
    r.kernel = ascii();
    r.kernel_version = "k-" + ascii();
    r.vcpus = static_cast<std::uint32_t>(1 + pick(8));
    r.memory_mib = static_cast<std::uint32_t>(64 + pick(4096));
    r.disk_mib = static_cast<std::uint32_t>(64 + pick(8192));
    switch (pick(10)) {
    case 0:
    case 1:
      r.start = pick(2) == 0;
      command(record_of(r));
      break;
    case 2:
    case 3: command(record_of(vm_cmd::start{})); break;
    case 4: command(pick(2) ? record_of(vm_cmd::stop{}) : record_of(vm_cmd::kill{})); break;
    case 5: command(pick(2) ? record_of(vm_cmd::remove{}) : record_of(vm_cmd::remove_force{})); break;
    case 6:
      if (!s.workspace_pending() && (s.phase == vm_phase::stopped || s.phase == vm_phase::running) && pick(2) == 0) {
        command(record_of(vm_cmd::prepare_workspace{
          "/home/" + std::to_string(pick(100)), "/root/w" + std::to_string(pick(100)), std::string(40, 'a'), "main"}));
        if (!s.workspace_pending())
          break;
        if (s.phase == vm_phase::running && pick(2) == 0)
          emit(journal::workspace_disk_released{});
        if (pick(3) == 0)
          break; // left without an outcome (a daemon died there): the snapshot holds it
      }
      if (s.workspace_pending()) {
        if (pick(3) == 0)
          emit(journal::workspace_prepare_failed{text()});
        else
          emit(journal::workspace_prepared{text(), "/root/w", text(), text(), text(), pick(1000), pick(1 << 30),
                                           pick(2) == 0});
        break;
      }
      command(
        record_of(vm_cmd::configure{static_cast<std::uint32_t>(pick(70)), static_cast<std::uint32_t>(pick(9000))}));
      break;
    case 7:
      if (s.phase == vm_phase::running)
        command(record_of(vm_cmd::reap{}));
      else
        emit(journal::note{text()}); // a kind apply() ignores
      break;
    case 8:
      if (s.phase == vm_phase::running)
        emit(journal::vm_adopted{static_cast<std::int64_t>(pick(1 << 22)), text()});
      else
        command(record_of(vm_cmd::reconcile{}));
      break;
    default: command({"bogus", ascii(), {}}); break; // refused: bad arguments or an unknown command
    }
    effects();
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(vm_snapshot)

BOOST_AUTO_TEST_CASE(every_field_round_trips_and_damage_is_refused) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    history h(seed, "vm-" + std::to_string(seed));
    for (int i = 0; i < 40; ++i) {
      h.step();
      h.s.created_ns = -static_cast<std::int64_t>(h.pick(1ull << 62)); // negative times too
      auto bytes = snapshot_encode(h.s);
      auto back = snapshot_decode(vm_state{}, h.s.stream_version, bytes);
      BOOST_TEST_REQUIRE(back.has_value());
      BOOST_TEST_REQUIRE(dump(*back) == dump(h.s));
      // Any truncation, any flipped bit, a trailing byte: refused, never a different state.
      auto cut = bytes.substr(0, h.pick(bytes.size()));
      BOOST_TEST(!snapshot_decode(vm_state{}, h.s.stream_version, cut).has_value());
      auto flipped = bytes;
      flipped[h.pick(flipped.size())] ^= static_cast<char>(1u << h.pick(8));
      BOOST_TEST(!snapshot_decode(vm_state{}, h.s.stream_version, flipped).has_value());
      BOOST_TEST(!snapshot_decode(vm_state{}, h.s.stream_version, bytes + "x").has_value());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_snapshot_it_cannot_vouch_for_is_refused) {
  history h(7, "web");
  while (h.s.stream_version < 5)
    h.step();
  auto bytes = snapshot_encode(h.s);
  auto v = h.s.stream_version;
  BOOST_TEST(snapshot_decode(vm_state{}, v, bytes).has_value());
  BOOST_TEST(!snapshot_decode(vm_state{}, v + 1, bytes).has_value()); // covers another version
  vm_state other;
  other.name = "db";
  BOOST_TEST(!snapshot_decode(other, v, bytes).has_value()); // another VM's
  auto future = bytes;
  future[0] = static_cast<char>(vm_snapshot_format + 1);
  BOOST_TEST(!snapshot_decode(vm_state{}, v, future).has_value()); // a format this build does not know
  BOOST_TEST(!snapshot_decode(vm_state{}, v, "").has_value());
  BOOST_TEST(!snapshot_decode(vm_state{}, v, std::string(64, '\0')).has_value());
}

BOOST_AUTO_TEST_CASE(fold_with_snapshots_equals_the_plain_fold_at_every_prefix) {
  banger::test::temp_dir d;
  auto j = open_ok(d.path);
  std::size_t checked = 0, total = 0, written = 0;
  for (std::uint64_t seed = 1; seed <= 24; ++seed) {
    history h(seed * 7919, fmt::format("vm-{}", seed));
    while (h.out.size() < 30)
      h.step();
    total += h.out.size();
    std::vector<std::string> encoded; // snapshot_encode of the plain fold at each version, from 1
    for (std::size_t k = 0; k < h.out.size(); ++k) {
      auto stream = vm_stream(h.s.name);
      BOOST_TEST_REQUIRE(j->append({stream, k, {journal::event{"op-1", h.out[k]}}}).has_value());
      auto plain = plain_fold(*j, h.s.name);
      BOOST_TEST_REQUIRE(plain.stream_version == k + 1);
      encoded.push_back(snapshot_encode(plain));
      // Whatever snapshot fold_stream left behind (its own refreshes included) ...
      BOOST_TEST_REQUIRE(dump(snap_fold(*j, h.s.name)) == dump(plain), "seed " << seed << " version " << k + 1);
      // ... and one planted at any earlier version.
      auto at = 1 + h.pick(k + 1);
      BOOST_TEST_REQUIRE(j->put_snapshot(stream, {at, encoded[at - 1]}).has_value());
      BOOST_TEST_REQUIRE(dump(snap_fold(*j, h.s.name)) == dump(plain), "seed " << seed << " snapshot at " << at);
      auto snap = j->get_snapshot(stream);
      BOOST_TEST_REQUIRE((snap && *snap));
      written += (*snap)->version != at; // refreshed after a long tail
      ++checked;
    }
  }
  BOOST_TEST(checked == total);
  BOOST_TEST(written > 0u);
}

BOOST_AUTO_TEST_CASE(long_tails_refresh_the_snapshot_short_ones_and_read_only_journals_do_not) {
  banger::test::temp_dir d;
  history h(99, "web");
  while (h.out.size() < journal::snapshot_refresh_after + 4)
    h.step();
  {
    auto j = open_ok(d.path);
    for (std::size_t k = 0; k + 1 < journal::snapshot_refresh_after; ++k)
      BOOST_TEST_REQUIRE(j->append({"vm/web", k, {journal::event{"op-1", h.out[k]}}}).has_value());
    snap_fold(*j, "web"); // a tail of refresh_after - 1 events: no snapshot
    BOOST_TEST(!j->get_snapshot("vm/web")->has_value());
    for (std::size_t k = journal::snapshot_refresh_after - 1; k < h.out.size(); ++k)
      BOOST_TEST_REQUIRE(j->append({"vm/web", k, {journal::event{"op-1", h.out[k]}}}).has_value());
  }
  {
    auto r = open_ok(d.path, true);
    BOOST_TEST(dump(snap_fold(*r, "web")) == dump(plain_fold(*r, "web")));
  }
  auto j = open_ok(d.path);
  BOOST_TEST(!j->get_snapshot("vm/web")->has_value()); // the read-only fold wrote none
  auto full = snap_fold(*j, "web");
  auto snap = j->get_snapshot("vm/web");
  BOOST_TEST_REQUIRE((snap && *snap));
  BOOST_TEST((*snap)->version == h.out.size());
  BOOST_TEST(dump(*snapshot_decode(vm_state{}, (*snap)->version, (*snap)->state)) == dump(full));
  // A short tail past it leaves it be.
  BOOST_TEST_REQUIRE(j->append({"vm/web", h.out.size(), {journal::event{"op-1", journal::note{"x"}}}}).has_value());
  BOOST_TEST(dump(snap_fold(*j, "web")) == dump(plain_fold(*j, "web")));
  BOOST_TEST((*j->get_snapshot("vm/web"))->version == h.out.size());
}

BOOST_AUTO_TEST_CASE(corrupt_future_and_ahead_of_stream_snapshots_are_ignored) {
  banger::test::temp_dir d;
  history h(5, "web");
  while (h.out.size() < 12)
    h.step();
  const std::uint64_t n = h.out.size();
  std::string lie; // a well-formed snapshot of another state, planted in the ways below
  {
    vm_state fake = h.s;
    fake.phase = vm_phase::running;
    fake.last_error = "planted";
    fake.stream_version = n + 8;
    lie = snapshot_encode(fake);
  }
  vm_state expected;
  {
    auto j = open_ok(d.path);
    for (std::size_t k = 0; k < h.out.size(); ++k)
      BOOST_TEST_REQUIRE(j->append({"vm/web", k, {journal::event{"op-1", h.out[k]}}}).has_value());
    expected = plain_fold(*j, "web");
  }
  auto plant = [&](std::uint64_t version, std::string state) {
    banger::test::raw_journal raw(d.path);
    raw.put("snapshots", "vm/web", journal::encode_snapshot({version, std::move(state)}));
  };
  auto check = [&](const char* what) {
    auto j = open_ok(d.path, true); // read-only: what was planted stays
    BOOST_TEST(dump(snap_fold(*j, "web")) == dump(expected), what);
  };
  plant(n + 8, lie);
  check("ahead of the stream");
  auto future = lie;
  future[0] = static_cast<char>(vm_snapshot_format + 1);
  plant(n, future);
  check("a future format");
  auto corrupt = snapshot_encode(expected);
  corrupt[corrupt.size() / 2] ^= 0x20;
  plant(n, corrupt);
  check("corrupt state bytes");
  plant(n, lie);
  check("a state of another version than it claims");
  {
    banger::test::raw_journal raw(d.path);
    raw.put("snapshots", "vm/web", "not a snapshot at all");
  }
  check("an outer value that does not decode");
  // And a writable fold replaces a bad snapshot with a good one.
  auto j = open_ok(d.path);
  BOOST_TEST(dump(snap_fold(*j, "web")) == dump(expected));
  auto snap = j->get_snapshot("vm/web");
  BOOST_TEST_REQUIRE((snap && *snap));
  BOOST_TEST((*snap)->version == n);
}

BOOST_AUTO_TEST_SUITE_END()
