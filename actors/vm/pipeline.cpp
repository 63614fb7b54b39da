// See pipeline.hpp.
#include "actors/vm/pipeline.hpp"

#include <algorithm>
#include <future>
#include <optional>

#include <fmt/core.h>

namespace banger::actors {

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds since(clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
}

/// Releases `held` (process -> network -> disks -> files, each class in reverse acquisition
/// order) and records each release; returns the failures as text.
std::vector<std::string> release_all(vm_state& s, std::vector<vm_resource> held, vm_host& host, const recorder& record,
                                     const std::string& op) {
  std::reverse(held.begin(), held.end());
  std::stable_sort(held.begin(), held.end(), [](const vm_resource& a, const vm_resource& b) {
    return traits_of(a.kind).release < traits_of(b.kind).release;
  });
  std::vector<std::string> failures;
  for (auto it = held.begin(); it != held.end(); ++it) {
    auto r = host.release(s, *it, op);
    if (!r) {
      failures.push_back(fmt::format("{} {}: {}", to_string(it->kind), it->id, r.err().message));
      continue;
    }
    auto next = record({journal::resource_released{std::string(to_string(it->kind)), it->id}});
    if (!next) {
      failures.push_back(
        fmt::format("{} {}: released, but the journal refused: {}", to_string(it->kind), it->id, next.err().message));
      continue;
    }
    s = std::move(*next);
  }
  return failures;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v)
    out += (out.empty() ? "" : "; ") + x;
  return out;
}

} // namespace

expected<vm_state> run_start(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                             const std::string& op) {
  std::vector<resource_kind> touched; // kinds this attempt recorded an intent for
  auto fail = [&](std::string_view stage, const error& why) -> expected<vm_state> {
    std::vector<vm_resource> held;
    for (const auto& r : s.resources)
      if (std::find(touched.begin(), touched.end(), r.kind) != touched.end())
        held.push_back(r);
    auto leftovers = release_all(s, held, host, record, op);
    std::string reason = why.message;
    if (!leftovers.empty())
      reason += "; could not release: " + joined(leftovers);
    auto failed = record({journal::vm_start_failed{std::string(stage), reason}});
    error e = why;
    e.message = fmt::format("VM {} did not start ({}): {}", s.name, stage, reason);
    if (failed)
      s = std::move(*failed);
    return e;
  };

  auto needed = [&](resource_kind kind) {
    if (!host.wants(s, kind))
      return false;
    const auto* have = s.find(kind);
    return !(per_vm(kind) && have && have->acquired); // per-VM ones live until delete
  };

  // The resources that depend on nothing but the VM (the table's concurrent group: disks, lease,
  // tap, socket dir) are made concurrently: their intents are recorded together first, their
  // facts together after.
  std::vector<resource_kind> group, sequential;
  for (const auto& t : resource_table)
    if (needed(t.kind))
      (t.group == start_group::concurrent ? group : sequential).push_back(t.kind);
  if (!group.empty()) {
    std::vector<journal::payload> intents;
    for (auto kind : group) {
      touched.push_back(kind);
      intents.push_back(journal::resource_intended{std::string(to_string(kind)), host.planned_id(s, kind)});
    }
    auto intended = record(std::move(intents));
    if (!intended)
      return fail(to_string(group.front()), intended.err());
    s = std::move(*intended);
    struct outcome {
      expected<step_result> made = make_error(errc::internal, "not run");
      std::chrono::milliseconds took{0};
    };
    std::vector<std::future<outcome>> running;
    for (auto kind : group)
      running.push_back(std::async(std::launch::async, [&host, &op, snapshot = s, kind] {
        auto t0 = clock::now();
        outcome o;
        o.made = host.acquire(snapshot, kind, op);
        o.took = since(t0);
        return o;
      }));
    std::vector<journal::payload> facts;
    std::optional<std::pair<resource_kind, error>> first_failure;
    std::vector<std::pair<std::string, std::chrono::milliseconds>> done;
    for (std::size_t i = 0; i < group.size(); ++i) {
      auto o = running[i].get();
      if (!o.made) {
        if (!first_failure)
          first_failure.emplace(group[i], o.made.err());
        continue;
      }
      facts.push_back(journal::resource_acquired{std::string(to_string(group[i])), o.made->id, o.made->detail});
      done.emplace_back(to_string(group[i]), o.took);
    }
    // What was made is recorded as made even when a sibling failed, so the undo releases it by
    // its real id.
    if (!facts.empty()) {
      auto acquired = record(std::move(facts));
      if (!acquired)
        return fail(to_string(group.front()), acquired.err());
      s = std::move(*acquired);
    }
    if (first_failure)
      return fail(to_string(first_failure->first), first_failure->second);
    for (const auto& [stage, took] : done)
      report(stage, took);
  }

  // Then, in order, what needs them (the sequential kinds): the NAT rule (the lease) and the VMM
  // (everything). The boot is timed from the VMM's launch.
  clock::time_point vmm_started = clock::now();
  for (auto kind : sequential) {
    auto t0 = clock::now();
    std::string k(to_string(kind));
    touched.push_back(kind);
    auto intended = record({journal::resource_intended{k, host.planned_id(s, kind)}});
    if (!intended)
      return fail(k, intended.err());
    s = std::move(*intended);
    if (kind == resource_kind::vmm)
      vmm_started = clock::now();
    auto made = host.acquire(s, kind, op);
    if (!made)
      return fail(k, made.err());
    auto acquired = record({journal::resource_acquired{k, made->id, made->detail}});
    if (!acquired) // made but not recorded as made: the intent is on record, so release it by that
      return fail(k, acquired.err());
    s = std::move(*acquired);
    report(k, since(t0));
  }

  auto t0 = clock::now();
  if (auto ok = host.wait_agent(s, op); !ok)
    return fail("agent", ok.err());
  report("agent", since(t0));
  auto boot = since(vmm_started);

  t0 = clock::now();
  if (auto ok = host.post_start(s, op); !ok)
    return fail("post_start", ok.err());
  report("post_start", since(t0));

  auto running = record({journal::vm_running{static_cast<std::uint64_t>(boot.count())}});
  if (!running)
    return fail("post_start", running.err());
  return running;
}

expected<vm_state> run_stop(vm_state s, vm_host& host, bool kill, const recorder& record, const stage_report& report,
                            const std::string& op, const std::string& reason) {
  auto t0 = clock::now();
  std::string how = host.shutdown(s, kill, op);
  report("shutdown", since(t0));
  t0 = clock::now();
  std::vector<vm_resource> held;
  for (const auto& r : s.resources)
    if (!per_vm(r.kind))
      held.push_back(r);
  auto leftovers = release_all(s, held, host, record, op);
  report("release", since(t0));
  auto stopped = record({journal::vm_stopped{reason.empty() ? how : reason}});
  if (!stopped)
    return stopped.err();
  s = std::move(*stopped);
  if (!leftovers.empty())
    return make_error(errc::operation_failed,
                      fmt::format("VM {} stopped, but some of its resources could not be released: {}; `banger vm "
                                  "delete {}` tries again",
                                  s.name, joined(leftovers), s.name));
  return s;
}

expected<vm_state> run_recover(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                               const std::string& op) {
  bool starting = s.phase == vm_phase::starting;
  auto t0 = clock::now();
  host.shutdown(s, true, op);
  std::vector<vm_resource> held;
  for (const auto& r : s.resources)
    if (!per_vm(r.kind) || !r.acquired)
      held.push_back(r);
  auto leftovers = release_all(s, held, host, record, op);
  report("recover", since(t0));
  std::string reason = starting ? "bangerd stopped during the start; what it had made was released"
                                : "bangerd stopped during the stop; it was finished at restart";
  if (!leftovers.empty())
    reason += "; could not release: " + joined(leftovers);
  auto settled = starting ? record({journal::vm_start_failed{"interrupted", reason}})
                          : record({journal::vm_stopped{"interrupted: " + reason}});
  if (!settled)
    return settled.err();
  s = std::move(*settled);
  if (!leftovers.empty())
    return make_error(errc::operation_failed, fmt::format("VM {}: {}", s.name, reason));
  return s;
}

namespace {

/// What a guest that did not mount its lent work disk again means for the user.
std::string not_mounted_again(const vm_state& s, const error& why) {
  return fmt::format("the guest did not mount its work disk again ({}); `banger vm restart {}` mounts it", why.message,
                     s.name);
}

} // namespace

expected<vm_state> run_prepare_workspace(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                                         const std::string& op, const vm_cmd::prepare_workspace& c,
                                         workspace_feed* feed) {
  auto failed = [&](const error& why) -> expected<vm_state> {
    (void)record({journal::workspace_prepare_failed{why.message}}); // the error below says it either way
    error e = why;
    e.message = fmt::format("the workspace did not land in VM {}: {}", s.name, why.message);
    return e;
  };
  if (!feed)
    return failed(make_error(errc::internal, "no workspace stream came with the command (a bug in bangerd)"));
  const auto* disk = s.find(resource_kind::work_disk);
  if (!disk || !disk->acquired) {
    auto t0 = clock::now();
    std::string k(to_string(resource_kind::work_disk));
    auto intended = record({journal::resource_intended{k, host.planned_id(s, resource_kind::work_disk)}});
    if (!intended)
      return failed(intended.err());
    s = std::move(*intended);
    auto made = host.acquire(s, resource_kind::work_disk, op);
    if (!made) {
      auto undo = host.release(s, *s.find(resource_kind::work_disk), op);
      if (undo) {
        auto released = record({journal::resource_released{k, s.find(resource_kind::work_disk)->id}});
        if (released)
          s = std::move(*released);
      }
      return failed(made.err());
    }
    auto acquired = record({journal::resource_acquired{k, made->id, made->detail}});
    if (!acquired)
      return failed(acquired.err());
    s = std::move(*acquired);
    report(k, since(t0));
  }
  auto t0 = clock::now();
  // Under TCG, a guest creates files at about a millisecond each; the host writes the disk in
  // a fraction of that. So a running guest lends its disk when nothing in it uses /root.
  if (s.phase == vm_phase::running && host.release_work_disk(s, op)) {
    auto released = record({journal::workspace_disk_released{}});
    if (!released) {
      (void)host.attach_work_disk(s, op);
      return failed(released.err());
    }
    s = std::move(*released);
  }
  auto landed = host.land_workspace(s, c.guest_path, *feed, op);
  std::string unmounted; // why the guest did not take its lent disk back
  if (s.workspace_disk_released)
    if (auto attached = host.attach_work_disk(s, op); !attached)
      unmounted = not_mounted_again(s, attached.err());
  if (!landed)
    return failed(unmounted.empty() ? landed.err()
                                    : make_error(landed.err().code, landed.err().message + "; " + unmounted));
  report("workspace", since(t0));
  auto done = record({journal::workspace_prepared{c.host_path, landed->guest_path, c.head, c.branch, landed->digest,
                                                  landed->files, landed->bytes, c.include_untracked}});
  if (!done || unmounted.empty())
    return done;
  return make_error(errc::operation_failed, fmt::format("the workspace landed in VM {}, but {}", s.name, unmounted));
}

expected<vm_state> run_reconcile(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                                 const std::string& op) {
  if (s.workspace_pending()) {
    // The daemon died while it wrote the work disk: its metadata may be half written, so it is
    // checked first, then the landing's leftovers go (repair_work_disk).
    std::string why = "interrupted: the daemon stopped while the workspace was written";
    // A running guest's agent was writing (its kernel keeps the disk consistent, and the agent
    // removes the staging tree of a landing whose daemon went): the disk is the guest's. Unless
    // the guest had let go of it: then this daemon was writing it, and the guest mounts it
    // only once it is repaired.
    bool in_guest = (s.phase == vm_phase::running || s.phase == vm_phase::paused) && !s.workspace_disk_released;
    if (auto ok = in_guest ? expected<void>() : host.repair_work_disk(s, op); !ok)
      why += "; the work disk could not be repaired: " + ok.err().message;
    else if (s.workspace_disk_released && s.phase == vm_phase::running)
      if (auto attached = host.attach_work_disk(s, op); !attached)
        why += "; " + not_mounted_again(s, attached.err());
    for (const auto& r : std::vector<vm_resource>(s.resources))
      if (per_vm(r.kind) && !r.acquired)
        if (host.release(s, r, op)) {
          auto released = record({journal::resource_released{std::string(to_string(r.kind)), r.id}});
          if (released)
            s = std::move(*released);
        }
    auto settled = record({journal::workspace_prepare_failed{why}});
    if (!settled)
      return settled.err();
    s = std::move(*settled);
  }
  switch (s.phase) {
  case vm_phase::starting:
  case vm_phase::stopping: return run_recover(std::move(s), host, record, report, op);
  case vm_phase::deleting: return run_delete(std::move(s), host, record, report, op);
  case vm_phase::running:
  case vm_phase::paused: break;
  default: return s;
  }
  auto why = host.adoption_refused(s);
  if (why.empty()) {
    const bool want_paused = s.phase == vm_phase::paused;
    auto paused = host.is_paused(s);
    expected<void> set{};
    if (!paused)
      set = paused.err();
    else if (*paused != want_paused)
      set = want_paused ? host.pause(s, op) : host.resume(s, op);
    if (!set)
      why = fmt::format("its VMM could not be set {}: {}", want_paused ? "paused" : "running", set.err().message);
  }
  if (why.empty()) {
    const auto* vmm = s.find(resource_kind::vmm);
    return record({journal::vm_adopted{std::atoll(vmm->id.c_str()), recorded_boot_id(*vmm)}});
  }
  auto stopping = record({journal::vm_stopping{"reconcile"}});
  if (!stopping)
    return stopping.err();
  return run_stop(std::move(*stopping), host, true, record, report, op, "not adopted at daemon start: " + why);
}

expected<vm_state> run_delete(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                              const std::string& op) {
  auto t0 = clock::now();
  auto leftovers = release_all(s, s.resources, host, record, op);
  if (!leftovers.empty())
    return make_error(errc::operation_failed,
                      fmt::format("VM {} was not deleted: some of its resources could not be released: {}; fix "
                                  "that and run `banger vm delete {}` again",
                                  s.name, joined(leftovers), s.name));
  auto deleted = record({journal::vm_deleted{}});
  if (!deleted)
    return deleted.err();
  host.remove_dirs(*deleted);
  report("delete", since(t0));
  return deleted;
}

namespace {

vm_work work_one(const vm_cmd::create& c, const vm_state&, const std::string& op) {
  if (!c.start)
    return {};
  return [op](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) {
    return run_start(std::move(s), h, rec, rep, op);
  };
}
vm_work work_one(const vm_cmd::configure&, const vm_state&, const std::string&) { return {}; }
vm_work work_one(const vm_cmd::start&, const vm_state&, const std::string& op) {
  return [op](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) {
    return run_start(std::move(s), h, rec, rep, op);
  };
}
vm_work stop_work(bool kill, const std::string& op) {
  return [op, kill](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) {
    return run_stop(std::move(s), h, kill, rec, rep, op);
  };
}
vm_work work_one(const vm_cmd::stop&, const vm_state&, const std::string& op) { return stop_work(false, op); }
vm_work work_one(const vm_cmd::kill&, const vm_state&, const std::string& op) { return stop_work(true, op); }
vm_work work_one(const vm_cmd::reap&, const vm_state&, const std::string& op) { return stop_work(false, op); }
vm_work work_one(const vm_cmd::remove&, const vm_state&, const std::string& op) {
  return [op](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) {
    return run_delete(std::move(s), h, rec, rep, op);
  };
}
vm_work work_one(const vm_cmd::remove_force&, const vm_state& decided, const std::string& op) {
  if (decided.phase != vm_phase::stopping) // it was stopped: a plain delete
    return work_one(vm_cmd::remove{}, decided, op);
  return [op](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) -> expected<vm_state> {
    auto stopped = run_stop(std::move(s), h, true, rec, rep, op);
    if (!stopped)
      return stopped;
    auto deleting = rec(*decide_delete(*stopped));
    if (!deleting)
      return deleting;
    return run_delete(std::move(*deleting), h, rec, rep, op);
  };
}
/// Pause and resume: the VMM first, then the fact (vm_paused / vm_resumed) on record.
vm_work run_state_work(bool pause, const std::string& op) {
  return [op, pause](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) -> expected<vm_state> {
    auto t0 = clock::now();
    auto done = pause ? h.pause(s, op) : h.resume(s, op);
    if (!done)
      return make_error(done.err().code, fmt::format("VM {} could not be {}: {}", s.name, pause ? "paused" : "resumed",
                                                     done.err().message));
    rep(pause ? "pause" : "resume", since(t0));
    return pause ? rec({journal::vm_paused{}}) : rec({journal::vm_resumed{}});
  };
}
vm_work work_one(const vm_cmd::pause&, const vm_state&, const std::string& op) { return run_state_work(true, op); }
vm_work work_one(const vm_cmd::resume&, const vm_state&, const std::string& op) { return run_state_work(false, op); }
vm_work work_one(const vm_cmd::reconcile&, const vm_state&, const std::string& op) {
  return [op](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) {
    return run_reconcile(std::move(s), h, rec, rep, op);
  };
}

} // namespace

vm_work work_of(const vm_command& c, const vm_state& decided, const std::string& op, const vm_attachments& with) {
  return std::visit(
    [&](const auto& v) -> vm_work {
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, vm_cmd::prepare_workspace>)
        // The one command whose work needs an attachment: the workspace's stream.
        return
          [op, cmd = v, feed = with.workspace](vm_state s, vm_host& h, const recorder& rec, const stage_report& rep) {
            return run_prepare_workspace(std::move(s), h, rec, rep, op, cmd, feed.get());
          };
      else
        return work_one(v, decided, op);
    },
    c);
}

} // namespace banger::actors
