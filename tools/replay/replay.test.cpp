// banger-replay's VM checks on real journals in temp dirs: the grammar and invariants verify
// applies, export -> import, hostile slices, and rerun of clean and altered recordings.
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>

#include <boost/test/unit_test.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tools/replay/history.hpp"
#include "tools/replay/rerun.hpp"
#include "tools/replay/slice.hpp"
#include "tools/replay/test_vm.hpp"
#include "tools/replay/verify.hpp"

using namespace banger;
using namespace banger::journal;

namespace {

std::unique_ptr<journal::journal> open_at(const std::filesystem::path& p) {
  auto j = journal::journal::open(p);
  BOOST_TEST_REQUIRE(j.has_value(), (j ? "" : j.err().message));
  return std::move(*j);
}

std::vector<stored_event> stream_of(const journal::journal& j, const std::string& stream) {
  auto evs = j.read_stream(stream);
  BOOST_TEST_REQUIRE(evs.has_value());
  return *evs;
}

/// Appends `events` to vm/<name> as they are (the way journals from before vm_command read).
void put(journal::journal& j, const std::string& name, std::vector<payload> events) {
  append_request r;
  r.stream = "vm/" + name;
  r.expected_version = any_version;
  for (auto& p : events)
    r.events.push_back({"op-0000aa", std::move(p)});
  BOOST_TEST_REQUIRE(j.append(std::move(r)).has_value());
}

vm_created created() { return vm_created{"0000abcd", "debian", "img1", "k", "kv1", 1, 512, 2048}; }

bool mentions(const std::vector<std::string>& problems, const std::string& what) {
  for (const auto& p : problems)
    if (p.find(what) != std::string::npos)
      return true;
  return false;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v)
    out += s + "\n";
  return out;
}

/// A full recorded life of VM t: create, start, a refused start, stop, delete.
void record_life(journal::journal& j) {
  replay::test::life l(j, "t");
  l.create();
  BOOST_TEST_REQUIRE(l.start());
  BOOST_TEST_REQUIRE(!l.command(actors::record_of(actors::vm_cmd::start{})).has_value()); // already running
  BOOST_TEST_REQUIRE(l.stop());
  BOOST_TEST_REQUIRE(l.remove());
  BOOST_TEST_REQUIRE((l.s.phase == actors::vm_phase::deleted));
}

std::size_t index_of(const std::vector<stored_event>& evs, std::string_view kind, std::size_t nth = 0) {
  for (std::size_t i = 0; i < evs.size(); ++i)
    if (kind_of(evs[i].body) == kind && nth-- == 0)
      return i;
  BOOST_FAIL("no such event " << kind);
  return 0;
}

/// A command record (nth of `command`).
std::size_t command_index(const std::vector<stored_event>& evs, std::string_view command, std::size_t nth = 0) {
  for (std::size_t i = 0; i < evs.size(); ++i)
    if (const auto* c = std::get_if<vm_command>(&evs[i].body); c && c->command == command && nth-- == 0)
      return i;
  BOOST_FAIL("no such command " << command);
  return 0;
}

/// Removes event `at` and renumbers the stream's versions after it, as a careful editor would.
void drop_and_renumber(std::vector<banger::journal::stored_event>& evs, std::size_t at) {
  evs.erase(evs.begin() + static_cast<long>(at));
  for (std::size_t i = at; i < evs.size(); ++i)
    --evs[i].version;
}

} // namespace

BOOST_AUTO_TEST_SUITE(replay_vm_checks)

BOOST_AUTO_TEST_CASE(a_clean_recorded_life_passes_verify_and_reruns_identically) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  record_life(*j);
  auto evs = stream_of(*j, "vm/t");
  BOOST_TEST(replay::audit_vm_stream("vm/t", evs).empty(), joined(replay::audit_vm_stream("vm/t", evs)));
  auto rep = replay::verify(*j);
  BOOST_TEST_REQUIRE(rep.has_value());
  BOOST_TEST(rep->ok(), joined(rep->problems));
  BOOST_TEST(rep->vm_streams == 1u);
  BOOST_TEST(rep->commands == 5u); // create, start, start (refused), stop, delete
  auto r = replay::rerun("vm/t", evs);
  BOOST_TEST(r.identical(), (r.diverged ? r.diverged->expected : ""));
  BOOST_TEST(r.commands == 5u);
  BOOST_TEST(r.redecided == 4u); // vm_created, vm_starting, vm_stopping, vm_deleting
  BOOST_TEST(r.commands + r.redecided + r.effects == evs.size());
}

BOOST_AUTO_TEST_CASE(a_resource_still_held_at_vm_deleted_is_a_problem) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  put(*j, "t",
      {created(), vm_starting{"kv1"}, resource_intended{"tap", "tap:t"}, resource_acquired{"tap", "tap:t", ""},
       vm_running{5}, vm_stopping{"stop"}, vm_stopped{"powered off"}, vm_deleting{}, vm_deleted{}});
  auto problems = replay::audit_vm_stream("vm/t", stream_of(*j, "vm/t"));
  BOOST_TEST_REQUIRE(problems.size() == 1u, joined(problems));
  BOOST_TEST(problems[0].find("seq 9 (version 9)") != std::string::npos, problems[0]);
  BOOST_TEST(problems[0].find("vm_deleted while resources are still held: tap tap:t (acquired)") != std::string::npos,
             problems[0]);
  auto rep = replay::verify(*j);
  BOOST_TEST(!rep->ok());
  BOOST_TEST(mentions(rep->problems, "stream \"vm/t\": seq 9"));
}

BOOST_AUTO_TEST_CASE(an_event_after_vm_deleted_is_a_problem_but_a_new_life_is_not) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  put(*j, "t", {created(), vm_deleting{}, vm_deleted{}, vm_starting{"kv1"}});
  auto problems = replay::audit_vm_stream("vm/t", stream_of(*j, "vm/t"));
  BOOST_TEST_REQUIRE(problems.size() == 1u, joined(problems));
  BOOST_TEST(problems[0].find("seq 4") != std::string::npos, problems[0]);
  BOOST_TEST(problems[0].find("vm_starting is not legal while the VM is deleted") != std::string::npos, problems[0]);

  // A name reused: a recorded create begins a new life after vm_deleted.
  replay::test::life l(*j, "u");
  l.create();
  BOOST_TEST_REQUIRE(l.remove());
  l.create();
  BOOST_TEST_REQUIRE(l.start());
  auto evs = stream_of(*j, "vm/u");
  BOOST_TEST(replay::audit_vm_stream("vm/u", evs).empty(), joined(replay::audit_vm_stream("vm/u", evs)));
  BOOST_TEST(replay::rerun("vm/u", evs).identical());
}

BOOST_AUTO_TEST_CASE(an_illegal_phase_transition_is_a_problem) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  // vm_running straight from stopped, a resource acquired while running, vm_stopped from running.
  put(*j, "t", {created(), vm_running{1}, resource_intended{"tap", "tap:t"}, vm_stopped{"stopped"}});
  auto problems = replay::audit_vm_stream("vm/t", stream_of(*j, "vm/t"));
  BOOST_TEST_REQUIRE(problems.size() == 3u, joined(problems));
  BOOST_TEST(problems[0].find("seq 2 (version 2): vm_running is not legal while the VM is stopped") !=
               std::string::npos,
             problems[0]);
  BOOST_TEST(problems[1].find("seq 3 (version 3): resource_intended is not legal while the VM is running") !=
               std::string::npos,
             problems[1]);
  BOOST_TEST(problems[2].find("seq 4 (version 4): vm_stopped is not legal while the VM is running") !=
               std::string::npos,
             problems[2]);
  // The grammar itself, directly: acquiring without an intent, releasing what is not held.
  actors::vm_state s;
  s.name = "t";
  s.phase = actors::vm_phase::starting;
  stored_event e;
  e.body = resource_acquired{"tap", "tap:t", ""};
  BOOST_TEST(actors::vm_grammar_violation(s, e, true).find("without an intent") != std::string::npos);
  e.body = resource_released{"tap", "tap:t"};
  BOOST_TEST(actors::vm_grammar_violation(s, e, true).find("released but not held") != std::string::npos);
  e.body = note{"x"};
  BOOST_TEST(actors::vm_grammar_violation(s, e, true) == "note does not belong in a VM's stream");
}

BOOST_AUTO_TEST_CASE(journals_before_vm_command_delete_from_stopped) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  put(*j, "t",
      {created(), vm_starting{"kv1"}, resource_intended{"overlay", "o"}, resource_acquired{"overlay", "o", ""},
       vm_running{5}, vm_stopping{"stop"}, vm_stopped{"powered off"}, resource_released{"overlay", "o"}, vm_deleted{}});
  auto evs = stream_of(*j, "vm/t");
  BOOST_TEST(replay::audit_vm_stream("vm/t", evs).empty(), joined(replay::audit_vm_stream("vm/t", evs)));
  auto r = replay::rerun("vm/t", evs);
  BOOST_TEST(r.identical());
  BOOST_TEST(r.commands == 0u);
  BOOST_TEST(r.effects == evs.size());
}

BOOST_AUTO_TEST_CASE(history_stages_time_the_start_stop_delete_and_each_resource) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  record_life(*j);
  auto spans = replay::stages_of(stream_of(*j, "vm/t"));
  std::map<std::string, int> count;
  for (const auto& s : spans) {
    ++count[s.stage];
    BOOST_TEST(s.to_seq >= s.from_seq);
    BOOST_TEST(s.outcome != "open", s.stage + " " + s.resource);
  }
  BOOST_TEST(count["start"] == 1);
  BOOST_TEST(count["stop"] == 1);
  BOOST_TEST(count["delete"] == 1);
  BOOST_TEST(count["acquire"] == 7); // overlay, work_disk, ip, tap, sockets, nat, vmm
  BOOST_TEST(count["hold"] == 7);
  auto start = std::find_if(spans.begin(), spans.end(), [](const auto& s) { return s.stage == "start"; });
  BOOST_TEST(start->outcome == "running");
  auto ip = std::find_if(spans.begin(), spans.end(), [](const auto& s) { return s.resource == "ip 172.30.0.2"; });
  BOOST_TEST_REQUIRE((ip != spans.end()));
  BOOST_TEST(ip->stage == "acquire"); // the intent had no id; the span takes the acquired one
}

BOOST_AUTO_TEST_CASE(export_then_import_keeps_kinds_fields_times_and_op_ids) {
  test::temp_dir dir;
  auto src = open_at(dir.path / "src");
  put(*src, "other", {created()}); // so the source seqs differ from the target's
  record_life(*src);
  auto s = replay::export_vm(*src, "t");
  BOOST_TEST_REQUIRE(s.has_value(), (s ? "" : s.err().message));
  auto text = replay::write_slice(*s);
  auto header = nlohmann::json::parse(text.substr(0, text.find('\n')));
  BOOST_TEST(header["format"] == "banger-journal-slice");
  BOOST_TEST(header["stream"] == "vm/t");
  BOOST_TEST(header["events"] == s->events.size());
  auto parsed = replay::parse_slice(text);
  BOOST_TEST_REQUIRE(parsed.has_value(), (parsed ? "" : parsed.err().message));
  BOOST_TEST(replay::write_slice(*parsed) == text); // lossless both ways

  auto target = dir.path / "made" / "by" / "import";
  auto r = replay::import_slice(*parsed, target, "copy");
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST(r->stream == "vm/copy");
  BOOST_TEST(r->first_seq == 1u);
  auto dst = open_at(target);
  auto before = stream_of(*src, "vm/t"), after = stream_of(*dst, "vm/copy");
  auto rep = replay::verify(*dst); // its refusals name VM t: the same refusals (rerun.hpp)
  BOOST_TEST(rep->ok(), joined(rep->problems));
  dst.reset();
  BOOST_TEST_REQUIRE(before.size() == after.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    BOOST_TEST(replay::payload_difference(before[i].body, after[i].body) == "");
    BOOST_TEST(before[i].wall_time_ns == after[i].wall_time_ns);
    BOOST_TEST(before[i].op_id == after[i].op_id);
    BOOST_TEST(before[i].version == after[i].version);
    BOOST_TEST(after[i].seq == i + 1); // the target's numbering
    BOOST_TEST(before[i].seq == i + 2);
  }

  // Never merged: the same name again is refused and writes nothing.
  auto again = replay::import_slice(*parsed, target, "copy");
  BOOST_TEST_REQUIRE(!again.has_value());
  BOOST_TEST((again.err().code == errc::already_exists));
  BOOST_TEST(again.err().message.find("import never merges") != std::string::npos, again.err().message);
  BOOST_TEST(open_at(target)->last_seq() == before.size());
}

BOOST_AUTO_TEST_CASE(import_refuses_a_journal_another_writer_holds) {
  test::temp_dir dir;
  auto src = open_at(dir.path / "src");
  record_life(*src);
  auto s = replay::export_vm(*src, "t");
  BOOST_TEST_REQUIRE(s.has_value());
  auto held = open_at(dir.path / "held"); // as bangerd holds its journal
  auto r = replay::import_slice(*s, dir.path / "held", "");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::unavailable));
  BOOST_TEST(r.err().message.find("bangerd is running on it; import into another --journal DIR") != std::string::npos,
             r.err().message);
  BOOST_TEST(held->last_seq() == 0u);
}

BOOST_AUTO_TEST_CASE(hostile_slices_are_refused_naming_the_line_and_nothing_is_written) {
  test::temp_dir dir;
  auto src = open_at(dir.path / "src");
  record_life(*src);
  auto good = replay::write_slice(*replay::export_vm(*src, "t"));
  std::vector<std::string> lines;
  for (std::size_t p = 0, nl; (nl = good.find('\n', p)) != std::string::npos; p = nl + 1)
    lines.push_back(good.substr(p, nl - p));
  auto join = [](const std::vector<std::string>& ls) {
    std::string out;
    for (const auto& l : ls)
      out += l + "\n";
    return out;
  };
  auto with = [&](std::size_t i, const std::function<void(nlohmann::ordered_json&)>& edit) {
    auto ls = lines;
    auto j = nlohmann::ordered_json::parse(ls[i]);
    edit(j);
    ls[i] = j.dump();
    return join(ls);
  };
  auto line = [&](std::size_t i, std::string text) {
    auto ls = lines;
    ls[i] = std::move(text);
    return join(ls);
  };
  auto dropped = lines;
  dropped.erase(dropped.begin() + 3);
  auto swapped = lines;
  std::swap(swapped[2], swapped[3]);
  std::string deep(5000, '[');

  struct hostile {
    std::string name, text, says;
  };
  std::vector<hostile> cases = {
    {"empty", "", "no header"},
    {"not json", line(0, "hello"), "slice line 1: not a JSON object"},
    {"other format", with(0, [](auto& j) { j["format"] = "tar"; }), "line 1: not a banger journal slice"},
    {"newer format", with(0, [](auto& j) { j["format_version"] = 2; }), "line 1: format_version 2 is newer"},
    {"path in the name", with(0, [](auto& j) { j["stream"] = "vm/../../etc"; }), "line 1: invalid VM name"},
    {"not a VM", with(0, [](auto& j) { j["stream"] = "daemon"; }), "line 1: stream \"daemon\" is not a VM's"},
    {"newer schema", with(0, [](auto& j) { j["schema_version"] = 99; }), "line 1: journal schema version 99"},
    {"count", with(0, [](auto& j) { j["events"] = 99; }), "header says 99 events"},
    {"extra field", with(2, [](auto& j) { j["evil"] = 1; }), "slice line 3: unknown field \"evil\""},
    {"missing field", with(2, [](auto& j) { j.erase("codec"); }), "slice line 3: field \"codec\" is missing"},
    {"bad base64", with(2, [](auto& j) { j["codec"] = "!!!!"; }), "slice line 3: codec is not valid base64"},
    {"garbage codec", with(2, [](auto& j) { j["codec"] = "AAAAAAAAAAA="; }), "slice line 3: codec"},
    {"edited payload", with(2, [](auto& j) { j["payload"]["image"] = "evil"; }),
     "slice line 3: payload disagrees with the codec"},
    {"edited op id", with(2, [](auto& j) { j["op_id"] = "op-ffffff"; }), "slice line 3: op_id disagrees"},
    {"edited time", with(2, [](auto& j) { j["wall_time_ns"] = 5; }), "slice line 3: wall_time_ns disagrees"},
    {"dropped line", join(dropped), "slice line 4: version 4 where 3 comes next"},
    {"reordered", join(swapped), "slice line 3: version 3 where 2 comes next"},
    {"seq repeated", with(2, [](auto& j) { j["seq"] = 1; }), "slice line 3: seq 1 does not follow seq 1"},
    {"truncated", good.substr(0, good.size() - 1), "does not end in a newline"},
    {"deep nesting", line(2, deep), "slice line 3: JSON nested too deeply"},
    {"wrong type", with(2, [](auto& j) { j["seq"] = "1"; }), "slice line 3: seq is not a positive integer"},
  };
  for (const auto& c : cases) {
    auto file = dir.path / ("bad-" + std::to_string(&c - cases.data()) + ".slice");
    std::ofstream(file, std::ios::binary) << c.text;
    auto s = replay::read_slice(file);
    BOOST_TEST_REQUIRE(!s.has_value(), c.name);
    BOOST_TEST(s.err().message.find(c.says) != std::string::npos, c.name << ": " << s.err().message);
    BOOST_TEST(s.err().message.find(file.string()) == 0u, c.name);
  }
  // What import does with them: banger-replay import reads (and so validates) the whole file
  // before it opens the target, so the target stays untouched.
  auto bin = std::getenv("BANGER_BIN_DIR");
  if (bin && std::filesystem::exists(std::filesystem::path(bin) / "banger-replay")) {
    auto target = dir.path / "never";
    auto cmd = fmt::format("{}/banger-replay import {} --journal {} 2>/dev/null", bin,
                           (dir.path / "bad-12.slice").string(), target.string());
    BOOST_TEST(std::system(cmd.c_str()) != 0);
    BOOST_TEST(!std::filesystem::exists(target));
  }
}

BOOST_AUTO_TEST_CASE(altered_recordings_diverge_at_the_altered_event) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  record_life(*j);
  const auto evs = stream_of(*j, "vm/t");
  BOOST_TEST_REQUIRE(replay::rerun("vm/t", evs).identical());

  // A decided event's field changed.
  {
    auto alt = evs;
    auto at = index_of(alt, "vm_starting");
    std::get<vm_starting>(alt[at].body).kernel_version = "kv2";
    auto r = replay::rerun("vm/t", alt);
    BOOST_TEST_REQUIRE(r.diverged.has_value());
    BOOST_TEST(r.diverged->index == at);
    BOOST_TEST(r.diverged->seq == alt[at].seq);
    BOOST_TEST(r.diverged->expected.find("field kernel_version: \"kv2\" vs \"kv1\"") != std::string::npos,
               r.diverged->expected);
  }
  // vm_running dropped (versions renumbered, as a careful editor would): the stop that follows
  // is decided on a VM still starting and refused.
  {
    auto alt = evs;
    auto at = index_of(alt, "vm_running");
    drop_and_renumber(alt, at);
    auto r = replay::rerun("vm/t", alt);
    BOOST_TEST_REQUIRE(r.diverged.has_value());
    auto start_again = command_index(alt, "start", 1); // the refused second start, now refused differently
    BOOST_TEST(r.diverged->index == start_again);
    BOOST_TEST(r.diverged->expected.find("decide refuses start differently: \"conflict: VM t is starting") !=
                 std::string::npos,
               r.diverged->expected);
  }
  // Any event dropped without renumbering: the gap is the divergence.
  {
    auto alt = evs;
    auto at = index_of(alt, "resource_acquired", 2);
    alt.erase(alt.begin() + static_cast<long>(at));
    auto r = replay::rerun("vm/t", alt);
    BOOST_TEST_REQUIRE(r.diverged.has_value());
    BOOST_TEST(r.diverged->index == at);
  }
  // A refusal flipped to an acceptance, and an acceptance to a refusal.
  {
    auto alt = evs;
    auto at = command_index(alt, "start", 1);
    std::get<vm_command>(alt[at].body).refused.clear();
    auto r = replay::rerun("vm/t", alt);
    BOOST_TEST_REQUIRE(r.diverged.has_value());
    BOOST_TEST(r.diverged->index == at);
    BOOST_TEST(r.diverged->expected.find("decide refuses start on a VM that is running") != std::string::npos,
               r.diverged->expected);
  }
  {
    auto alt = evs;
    auto at = command_index(alt, "stop");
    std::get<vm_command>(alt[at].body).refused = "conflict: made up";
    auto r = replay::rerun("vm/t", alt);
    BOOST_TEST_REQUIRE(r.diverged.has_value());
    BOOST_TEST(r.diverged->index == at);
    BOOST_TEST(r.diverged->expected.find("decide accepts stop on a VM that is running, producing vm_stopping") !=
                 std::string::npos,
               r.diverged->expected);
  }
  // A decided event recorded without its command.
  {
    auto alt = evs;
    auto at = command_index(alt, "start");
    drop_and_renumber(alt, at);
    auto r = replay::rerun("vm/t", alt);
    BOOST_TEST_REQUIRE(r.diverged.has_value());
    BOOST_TEST(r.diverged->index == at);
    BOOST_TEST(r.diverged->expected.find("no recorded command decided it") != std::string::npos);
  }
  // verify reports the same divergence in a journal.
  {
    auto alt = evs;
    std::get<vm_starting>(alt[index_of(alt, "vm_starting")].body).kernel_version = "kv2";
    auto problems = replay::audit_vm_stream("vm/t", alt);
    BOOST_TEST_REQUIRE(problems.size() == 1u, joined(problems));
    BOOST_TEST(problems[0].find("the recording diverges from decide()") != std::string::npos, problems[0]);
  }
}

BOOST_AUTO_TEST_CASE(state_at_a_seq_is_the_fold_up_to_it) {
  test::temp_dir dir;
  auto j = open_at(dir.path / "j");
  record_life(*j);
  auto evs = stream_of(*j, "vm/t");
  actors::vm_state s;
  s.name = "t";
  for (const auto& e : evs)
    if (e.seq <= evs[index_of(evs, "vm_running")].seq)
      s = actors::apply(std::move(s), e);
  BOOST_TEST((s.phase == actors::vm_phase::running));
  auto text = replay::state_text(s);
  BOOST_TEST(text.find("phase       running") != std::string::npos, text);
  BOOST_TEST(text.find("ip         acquired  172.30.0.2") != std::string::npos, text);
  auto js = nlohmann::json::parse(replay::state_json(s));
  BOOST_TEST(js["phase"] == "running");
  BOOST_TEST(js["resources"].size() == 7u);
}

BOOST_AUTO_TEST_SUITE_END()
