// Test-only (replay_test): a fake vm_host like actors/vm/pipeline.test.cpp's, and a recorder of a
// VM's life into a real journal that does what the vm actor does (each command recorded with the
// events decide() produced, effects through the pipeline), for tests that need real recordings.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/vm/pipeline.hpp"
#include "journal/journal.hpp"

namespace banger::replay::test {

/// Makes everything it is asked to, after `delay` per acquire (so commands really queue).
struct fake_host : actors::vm_host {
  std::chrono::milliseconds delay{0};
  std::mutex mu;
  std::vector<std::string> log; ///< "+kind id" / "-kind id"
  int next_pid = 100;
  void note(std::string line) {
    std::lock_guard lock(mu);
    log.push_back(std::move(line));
  }
  bool wants(const actors::vm_state&, actors::resource_kind) override { return true; }
  std::string planned_id(const actors::vm_state& s, actors::resource_kind kind) override {
    if (kind == actors::resource_kind::ip || kind == actors::resource_kind::vmm)
      return "";
    return std::string(to_string(kind)) + ":" + s.name;
  }
  expected<actors::step_result> acquire(const actors::vm_state& s, actors::resource_kind kind,
                                        const std::string&) override {
    std::this_thread::sleep_for(delay);
    std::string id;
    if (kind == actors::resource_kind::ip)
      id = "172.30.0.2";
    else if (kind == actors::resource_kind::vmm) {
      std::lock_guard lock(mu);
      id = std::to_string(next_pid++);
    } else
      id = planned_id(s, kind);
    note("+" + std::string(to_string(kind)) + " " + id);
    return actors::step_result{id, "d"};
  }
  expected<void> release(const actors::vm_state&, const actors::vm_resource& r, const std::string&) override {
    note("-" + std::string(to_string(r.kind)) + " " + r.id);
    return {};
  }
  expected<void> wait_agent(const actors::vm_state&, const std::string&) override { return {}; }
  expected<void> post_start(const actors::vm_state&, const std::string&) override { return {}; }
  expected<void> pause(const actors::vm_state&, const std::string&) override {
    log.push_back("pause");
    frozen = true;
    return {};
  }
  bool frozen = false; ///< what is_paused() answers
  expected<bool> is_paused(const actors::vm_state&) override { return frozen; }
  expected<void> resume(const actors::vm_state&, const std::string&) override {
    log.push_back("resume");
    frozen = false;
    return {};
  }
  std::string shutdown(const actors::vm_state&, bool kill, const std::string&) override {
    return kill ? "killed" : "powered off";
  }
  bool vmm_alive(const actors::vm_state&) override { return true; }
  std::string adoption_refused(const actors::vm_state&) override { return {}; }
  void remove_dirs(const actors::vm_state&) override {}
  expected<workspace::landed> land_workspace(const actors::vm_state&, const std::string&, actors::workspace_feed&,
                                             const std::string&) override {
    return make_error(errc::unavailable, "no workspaces in replay's test VMs");
  }
  expected<void> release_work_disk(const actors::vm_state&, const std::string&) override {
    return make_error(errc::unavailable, "no workspaces in replay's test VMs");
  }
  expected<void> attach_work_disk(const actors::vm_state&, const std::string&) override { return {}; }
  expected<void> repair_work_disk(const actors::vm_state&, const std::string&) override { return {}; }
};

/// Records a VM's life into `j` as the vm actor would, without CAF.
struct life {
  journal::journal& j;
  actors::vm_state s;
  fake_host host;
  actors::recorder record = [this](std::vector<journal::payload> events) -> expected<actors::vm_state> {
    journal::append_request req;
    req.stream = actors::vm_stream(s.name);
    req.expected_version = s.stream_version;
    for (auto& p : events)
      req.events.push_back({"op-00000a", std::move(p)});
    auto r = j.append(std::move(req));
    if (!r)
      return r.err();
    auto evs = j.read_stream(actors::vm_stream(s.name), s.stream_version + 1);
    if (!evs)
      return evs.err();
    for (const auto& e : *evs)
      s = actors::apply(std::move(s), e);
    return s;
  };
  actors::stage_report report = [](const std::string&, std::chrono::milliseconds) {};

  life(journal::journal& jj, std::string name) : j(jj) { s.name = std::move(name); }

  /// Decides `c` and records it as the actor does; the decision.
  actors::decision command(journal::vm_command c) {
    auto d = actors::decide(s, c);
    if (!d) {
      if (s.phase != actors::vm_phase::absent && s.phase != actors::vm_phase::deleted) {
        c.refused = actors::refusal_text(d.err());
        (void)record({c});
      }
      return d;
    }
    std::vector<journal::payload> evs{c};
    evs.insert(evs.end(), d->begin(), d->end());
    (void)record(std::move(evs));
    return d;
  }
  void create() {
    actors::vm_cmd::create r;
    r.vcpus = 1;
    r.memory_mib = 512;
    r.disk_mib = 2048;
    r.id = "0000abcd";
    r.image = "debian";
    r.image_version = "img1";
    r.kernel = "k";
    r.kernel_version = "kv1";
    (void)command(actors::record_of(r));
  }
  bool start() {
    return command(actors::record_of(actors::vm_cmd::start{})) &&
           actors::run_start(s, host, record, report, "op-00000a").has_value();
  }
  bool stop() {
    return command(actors::record_of(actors::vm_cmd::stop{})) &&
           actors::run_stop(s, host, false, record, report, "op-00000a").has_value();
  }
  bool remove() {
    return command(actors::record_of(actors::vm_cmd::remove{})) &&
           actors::run_delete(s, host, record, report, "op-00000a").has_value();
  }
};

} // namespace banger::replay::test
