// See vm_actor.hpp. Event-based; the only blocking call is the fold of its own stream at spawn.
// Workers are detached and block on the host and on this actor's record handler.
#include "actors/vm/vm_actor.hpp"

#include <deque>

#include <caf/all.hpp>
#include <fmt/core.h>

#include "actors/failure.hpp"
#include "actors/journaled.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

namespace {

using namespace std::chrono_literals;
using record_atom = caf::atom_constant<caf::atom("record")>;
using check_atom = caf::atom_constant<caf::atom("vmcheck")>;
constexpr auto check_every = std::chrono::seconds(2);

struct queued {
  vm_request rq;
  caf::response_promise rp;
};

struct vm_actor_state {
  std::string name;
  vm_deps deps;
  vm_state st;
  bool busy = false;
  std::uint64_t job = 0;
  caf::response_promise current; ///< the command the worker runs for
  std::string current_op;        ///< the op id of the command being decided or run
  std::deque<queued> queue;
  bool check_scheduled = false;
};

using self_ptr = caf::stateful_actor<vm_actor_state>*;

/// Appends `events` to the VM's stream (this actor is its only writer, so appends are ordered by
/// its mailbox), applies them, then calls `then` with the outcome.
void append(self_ptr self, std::vector<journal::payload> events, const std::string& op,
            std::function<void(expected<vm_state>)> then) {
  auto& s = self->state;
  append_and_apply(self, *s.deps.writer, vm_stream(s.name), s.st.stream_version, std::move(events), op, &s.st,
                   [self, then](expected<void> r) {
                     if (!r)
                       return then(r.err());
                     then(self->state.st);
                   });
}

void next(self_ptr self);

void schedule_check(self_ptr self) {
  if (self->state.check_scheduled)
    return;
  self->state.check_scheduled = true;
  self->delayed_send(self, check_every, check_atom::value);
}

void finish(caf::response_promise rp, expected<vm_state> r, const std::string& op) {
  if (!r) {
    auto e = std::move(r).err();
    e.op_id = op;
    r = std::move(e);
  }
  if (rp.pending()) // internal commands (reap) have no requester
    rp.deliver(std::move(r));
}

/// Runs `work` (pipeline functions) in a detached worker; the command's reply follows its end.
void run_worker(self_ptr self, const vm_request& rq, caf::response_promise rp, vm_work work) {
  auto& s = self->state;
  s.busy = true;
  s.current = rp;
  auto id = ++s.job;
  caf::actor parent = caf::actor_cast<caf::actor>(self);
  auto host = s.deps.host;
  auto start = s.st;
  auto op = rq.op_id;
  auto progress = rq.progress;
  // The job id is passed as an argument: CAF 0.17 dereferences a null argument tuple when a
  // void actor function takes none (UBSan: reference binding to null pointer).
  self->system().spawn<caf::detached>(
    [=](caf::event_based_actor* worker, std::uint64_t job) {
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
      // A bug in the work (an exception) fails the command with internal, and the actor then
      // settles what the work left mid-way (job_done); it never leaves the requester waiting.
      expected<vm_state> r = make_error(errc::internal, "not run");
      bool threw = false;
      try {
        r = work(start, *host, record, report);
      } catch (...) {
        threw = true;
        r = internal_error(fmt::format("VM {}'s worker", start.name), describe(std::current_exception()), op);
      }
      caf::anon_send(parent, job_done_atom::value, job, std::move(r), op, threw);
      worker->quit();
    },
    id);
}

bool exists(const vm_state& s) { return s.phase != vm_phase::absent && s.phase != vm_phase::deleted; }

/// Decides `cmd` on the current state (the same decide() banger-replay's rerun uses), records
/// the command with its decision (a refusal alone, and only for a VM that exists), then runs the
/// command's work in a worker.
void process(self_ptr self, vm_request rq, caf::response_promise rp) {
  auto& s = self->state;
  const auto op = rq.op_id;
  s.current_op = op;
  if (std::holds_alternative<vm_cmd::reconcile>(rq.command) && !needs_reconcile(s.st)) {
    finish(rp, s.st, op); // settled already: nothing to reconcile, nothing to record
    return next(self);
  }
  auto d = decide(s.st, rq.command);
  if (!d) {
    auto why = d.err();
    if (!exists(s.st)) {
      finish(rp, why, op);
      return next(self);
    }
    s.busy = true; // until the record is applied: a command taken meanwhile would decide on a stale state
    append(self, {record_of(rq.command, refusal_text(why))}, op, [self, rp, op, why](expected<vm_state>) {
      self->state.busy = false;
      finish(rp, why, op);
      next(self);
    });
    return;
  }
  if (std::holds_alternative<vm_cmd::create>(rq.command))
    schedule_check(self); // a reused name: the liveness checks stopped at delete
  std::vector<journal::payload> events{record_of(rq.command)};
  events.insert(events.end(), d->begin(), d->end());
  s.busy = true; // as above: the next command is decided once this decision is applied
  append(self, std::move(events), op, [self, rq, rp, op](expected<vm_state> r) {
    self->state.busy = false;
    auto work = r ? work_of(rq.command, *r, op, rq.with) : vm_work{};
    if (!work) {
      finish(rp, std::move(r), op);
      return next(self);
    }
    run_worker(self, rq, rp, std::move(work));
  });
}

void next(self_ptr self) {
  auto& s = self->state;
  if (s.busy || s.queue.empty())
    return;
  auto q = std::move(s.queue.front());
  s.queue.pop_front();
  process(self, std::move(q.rq), std::move(q.rp));
}

caf::behavior vm_actor(self_ptr self, std::string name, vm_deps deps) {
  auto& s = self->state;
  install_exception_handler(self, {fmt::format("VM {}'s actor", name), [self] { return self->state.current_op; },
                                   [self] {
                                     std::vector<caf::response_promise> held{self->state.current};
                                     for (auto& q : self->state.queue)
                                       held.push_back(q.rp);
                                     return held;
                                   }});
  s.name = name;
  s.deps = std::move(deps);
  s.st.name = name;
  s.st = journal::fold_stream(*s.deps.journal, vm_stream(name), std::move(s.st));
  schedule_check(self);
  return {
    [self](vm_request& rq) -> caf::result<expected<vm_state>> {
      auto& st = self->state;
      auto rp = self->make_response_promise<expected<vm_state>>();
      if (st.busy || !st.queue.empty()) {
        st.queue.push_back({std::move(rq), rp});
        return rp;
      }
      process(self, std::move(rq), rp);
      return rp;
    },
    [self](record_atom, std::vector<journal::payload>& events,
           const std::string& op) -> caf::result<expected<vm_state>> {
      auto rp = self->make_response_promise<expected<vm_state>>();
      append(self, std::move(events), op, [rp](expected<vm_state> r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [self](job_done_atom, std::uint64_t id, expected<vm_state>& r, const std::string& op, bool threw) {
      auto& st = self->state;
      if (!st.busy || id != st.job)
        return;
      st.busy = false;
      finish(st.current, std::move(r), op);
      const auto p = st.st.phase;
      if (threw && (p == vm_phase::starting || p == vm_phase::stopping || p == vm_phase::deleting)) {
        // The work stopped mid-way: settle the VM now, as a daemon start would (run_reconcile),
        // before any queued command is decided on a half-done state.
        process(self, vm_request{vm_cmd::reconcile{}, op, {}, {}}, caf::response_promise{});
        return;
      }
      next(self);
    },
    [self](caf::get_atom) { return self->state.st; },
    [self](check_atom) {
      auto& st = self->state;
      st.check_scheduled = false;
      if (st.st.phase == vm_phase::deleted || st.st.phase == vm_phase::absent)
        return; // checks resume with the next create
      schedule_check(self);
      // A paused VM's VMM is a live process too: it is reaped only when it is gone.
      if (!vmm_expected(st.st.phase) || st.busy || !st.queue.empty() || st.deps.host->vmm_alive(st.st))
        return;
      process(self, vm_request{vm_cmd::reap{}, {}, {}, {}}, caf::response_promise{});
    },
  };
}

} // namespace

caf::actor spawn_vm_actor(caf::actor_system& sys, const std::string& name, const vm_deps& deps) {
  return sys.spawn(vm_actor, name, deps);
}

} // namespace banger::actors
