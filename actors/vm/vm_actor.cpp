// See vm_actor.hpp. Event-based; the only blocking call is the fold of its own stream at spawn.
// Workers are detached and block on the host and on this actor's record handler.
#include "actors/vm/vm_actor.hpp"

#include <deque>

#include <caf/all.hpp>
#include <fmt/core.h>

#include "journal/journal.hpp"

namespace banger::actors {

namespace {

using namespace std::chrono_literals;
using record_atom = caf::atom_constant<caf::atom("record")>;
using check_atom = caf::atom_constant<caf::atom("vmcheck")>;
constexpr auto check_every = std::chrono::seconds(2);

struct queued {
  vm_command cmd;
  caf::response_promise rp;
};

struct vm_actor_state {
  std::string name;
  vm_deps deps;
  vm_state st;
  bool busy = false;
  std::uint64_t job = 0;
  caf::response_promise current; ///< the command the worker runs for
  std::deque<queued> queue;
  bool check_scheduled = false;
};

using self_ptr = caf::stateful_actor<vm_actor_state>*;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Appends `events` to the VM's stream (this actor is its only writer, so appends are ordered by
/// its mailbox), applies them, then calls `then` with the outcome.
void append(self_ptr self, std::vector<journal::payload> events, const std::string& op,
            std::function<void(expected<vm_state>)> then) {
  journal::append_request req;
  req.stream = vm_stream(self->state.name);
  req.expected_version = self->state.st.stream_version;
  for (auto& e : events)
    req.events.push_back({op, e});
  self->request(*self->state.deps.writer, 30s, append_atom::value, std::move(req))
    .then(
      [self, events, then](append_reply& r) {
        if (!r.ok)
          return then(r.err);
        std::uint64_t v = r.result.stream_version - events.size();
        for (const auto& body : events) {
          journal::stored_event e;
          e.stream = vm_stream(self->state.name);
          e.version = ++v;
          e.wall_time_ns = now_ns();
          e.body = body;
          self->state.st = apply(std::move(self->state.st), e);
        }
        then(self->state.st);
      },
      [self, then](caf::error& e) { then(make_error(errc::unavailable, "journal: " + self->system().render(e))); });
}

void next(self_ptr self);

void schedule_check(self_ptr self) {
  if (self->state.check_scheduled)
    return;
  self->state.check_scheduled = true;
  self->delayed_send(self, check_every, check_atom::value);
}

void finish(self_ptr self, caf::response_promise rp, expected<vm_state> r, const std::string& op) {
  vm_reply out;
  out.ok = r.has_value();
  if (!r) {
    out.err = r.err();
    out.err.op_id = op;
  }
  out.state = self->state.st;
  if (rp.pending()) // internal commands (reap) have no requester
    rp.deliver(std::move(out));
}

/// Runs `work` (pipeline functions) in a detached worker; the command's reply follows its end.
void run_worker(self_ptr self, vm_command cmd, caf::response_promise rp,
                std::function<expected<vm_state>(vm_state, vm_host&, const recorder&, const stage_report&)> work) {
  auto& s = self->state;
  s.busy = true;
  s.current = rp;
  auto id = ++s.job;
  caf::actor parent = caf::actor_cast<caf::actor>(self);
  auto host = s.deps.host;
  auto start = s.st;
  auto op = cmd.op_id;
  auto progress = cmd.progress;
  self->system().spawn<caf::detached>([=](caf::event_based_actor* worker) {
    caf::scoped_actor io{worker->system()};
    recorder record = [&](std::vector<journal::payload> events) -> expected<vm_state> {
      expected<vm_state> out = make_error(errc::unavailable, "the VM's actor did not answer");
      io->request(parent, 60s, record_atom::value, std::move(events), op)
        .receive([&](expected<vm_state>& r) { out = std::move(r); },
                 [&](caf::error& e) {
                   out = make_error(errc::unavailable, "the VM's actor is gone: " + worker->system().render(e));
                 });
      return out;
    };
    stage_report report = [&](const std::string& stage, std::chrono::milliseconds took) {
      if (progress && *progress)
        (*progress)(progress_update{stage, static_cast<std::uint64_t>(took.count()), 0});
    };
    auto r = work(start, *host, record, report);
    caf::anon_send(parent, job_done_atom::value, id, std::move(r), op);
    worker->quit();
  });
}

void process(self_ptr self, vm_command cmd, caf::response_promise rp) {
  auto& s = self->state;
  const auto op = cmd.op_id;
  auto refuse = [&](const error& e) {
    finish(self, rp, e, op);
    next(self);
  };
  auto start_worker = [self, cmd, rp, op]() {
    run_worker(self, cmd, rp, [op](vm_state st, vm_host& h, const recorder& rec, const stage_report& rep) {
      return run_start(std::move(st), h, rec, rep, op);
    });
  };
  using k = vm_command::kind;
  switch (cmd.what) {
  case k::create: {
    auto d = decide_create(s.st, cmd.create);
    if (!d)
      return refuse(d.err());
    schedule_check(self); // a reused name: the liveness checks stopped at delete
    auto events = *d;
    if (cmd.start)
      events.push_back(journal::vm_starting{cmd.create.kernel_version});
    append(self, events, op, [self, rp, op, start_worker, start = cmd.start](expected<vm_state> r) {
      if (!r || !start) {
        finish(self, rp, std::move(r), op);
        return next(self);
      }
      start_worker();
    });
    return;
  }
  case k::start: {
    auto d = decide_start(s.st, s.st.kernel_version);
    if (!d)
      return refuse(d.err());
    append(self, *d, op, [self, rp, op, start_worker](expected<vm_state> r) {
      if (!r) {
        finish(self, rp, std::move(r), op);
        return next(self);
      }
      start_worker();
    });
    return;
  }
  case k::stop:
  case k::kill: {
    bool kill = cmd.what == k::kill;
    auto d = decide_stop(s.st, kill ? "kill" : "stop");
    if (!d)
      return refuse(d.err());
    append(self, *d, op, [self, cmd, rp, op, kill](expected<vm_state> r) {
      if (!r) {
        finish(self, rp, std::move(r), op);
        return next(self);
      }
      run_worker(self, cmd, rp, [op, kill](vm_state st, vm_host& h, const recorder& rec, const stage_report& rep) {
        return run_stop(std::move(st), h, kill, rec, rep, op);
      });
    });
    return;
  }
  case k::remove: {
    bool running = s.st.phase == vm_phase::running;
    if (running && !cmd.force)
      return refuse(decide_delete(s.st).err());
    if (!running) {
      if (auto d = decide_delete(s.st); !d)
        return refuse(d.err());
      run_worker(self, cmd, rp, [op](vm_state st, vm_host& h, const recorder& rec, const stage_report& rep) {
        return run_delete(std::move(st), h, rec, rep, op);
      });
      return;
    }
    append(self, *decide_stop(s.st, "delete"), op, [self, cmd, rp, op](expected<vm_state> r) {
      if (!r) {
        finish(self, rp, std::move(r), op);
        return next(self);
      }
      run_worker(self, cmd, rp, [op](vm_state st, vm_host& h, const recorder& rec, const stage_report& rep) {
        auto stopped = run_stop(std::move(st), h, true, rec, rep, op);
        if (!stopped)
          return stopped;
        return run_delete(std::move(*stopped), h, rec, rep, op);
      });
    });
    return;
  }
  case k::reap: {
    // The VMM went away on its own: record the stop, release what the run held.
    auto d = decide_stop(s.st, "vmm exited");
    if (!d)
      return refuse(d.err());
    append(self, *d, op, [self, cmd, rp, op](expected<vm_state> r) {
      if (!r) {
        finish(self, rp, std::move(r), op);
        return next(self);
      }
      run_worker(self, cmd, rp, [op](vm_state st, vm_host& h, const recorder& rec, const stage_report& rep) {
        return run_stop(std::move(st), h, false, rec, rep, op);
      });
    });
    return;
  }
  case k::recover: {
    if (s.st.phase != vm_phase::starting && s.st.phase != vm_phase::stopping) {
      finish(self, rp, s.st, op);
      return next(self);
    }
    run_worker(self, cmd, rp, [op](vm_state st, vm_host& h, const recorder& rec, const stage_report& rep) {
      return run_recover(std::move(st), h, rec, rep, op);
    });
    return;
  }
  case k::configure: {
    auto d = decide_configure(s.st, cmd.vcpus, cmd.memory_mib);
    if (!d)
      return refuse(d.err());
    append(self, *d, op, [self, rp, op](expected<vm_state> r) {
      finish(self, rp, std::move(r), op);
      next(self);
    });
    return;
  }
  }
}

void next(self_ptr self) {
  auto& s = self->state;
  if (s.busy || s.queue.empty())
    return;
  auto q = std::move(s.queue.front());
  s.queue.pop_front();
  process(self, std::move(q.cmd), std::move(q.rp));
}

caf::behavior vm_actor(self_ptr self, std::string name, vm_deps deps) {
  auto& s = self->state;
  s.name = name;
  s.deps = std::move(deps);
  s.st.name = name;
  s.st = journal::fold_stream(*s.deps.journal, vm_stream(name), std::move(s.st));
  schedule_check(self);
  if (s.st.phase == vm_phase::starting || s.st.phase == vm_phase::stopping) {
    vm_command recover;
    recover.what = vm_command::kind::recover;
    process(self, std::move(recover), caf::response_promise{});
  }
  return {
    [self](vm_command& cmd) -> caf::result<vm_reply> {
      auto& st = self->state;
      auto rp = self->make_response_promise<vm_reply>();
      if (st.busy || !st.queue.empty()) {
        st.queue.push_back({std::move(cmd), rp});
        return rp;
      }
      process(self, std::move(cmd), rp);
      return rp;
    },
    [self](record_atom, std::vector<journal::payload>& events,
           const std::string& op) -> caf::result<expected<vm_state>> {
      auto rp = self->make_response_promise<expected<vm_state>>();
      append(self, std::move(events), op, [rp](expected<vm_state> r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [self](job_done_atom, std::uint64_t id, expected<vm_state>& r, const std::string& op) {
      auto& st = self->state;
      if (!st.busy || id != st.job)
        return;
      st.busy = false;
      finish(self, st.current, std::move(r), op);
      next(self);
    },
    [self](caf::get_atom) { return self->state.st; },
    [self](check_atom) {
      auto& st = self->state;
      st.check_scheduled = false;
      if (st.st.phase == vm_phase::deleted || st.st.phase == vm_phase::absent)
        return; // checks resume with the next create
      schedule_check(self);
      if (st.st.phase != vm_phase::running || st.busy || !st.queue.empty() || st.deps.host->vmm_alive(st.st))
        return;
      vm_command reap;
      reap.what = vm_command::kind::reap;
      process(self, std::move(reap), caf::response_promise{});
    },
  };
}

} // namespace

caf::actor spawn_vm_actor(caf::actor_system& sys, const std::string& name, const vm_deps& deps) {
  return sys.spawn(vm_actor, name, deps);
}

} // namespace banger::actors
