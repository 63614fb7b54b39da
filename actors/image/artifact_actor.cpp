// See artifact_actor.hpp. Event-based; the only blocking call is the fold of its own (short)
// stream at spawn. Jobs run in detached workers.
#include "actors/image/artifact_actor.hpp"

#include <deque>

#include <caf/all.hpp>
#include <fmt/core.h>

#include "actors/failure.hpp"
#include "actors/journaled.hpp"
#include "actors/messages.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

namespace {

using namespace std::chrono_literals;

struct waiter {
  caf::response_promise rp;
  progress_sink progress;
};

struct running_job {
  std::uint64_t id = 0;
  std::string key;
  std::vector<waiter> waiters;
  std::string op_id;
};

struct queued {
  artifact_request rq; ///< a build
  caf::response_promise rp;
};

struct artifact_actor_state {
  artifact_kind kind = artifact_kind::image;
  std::string name;
  artifact_deps deps;
  artifact_state st;
  std::optional<running_job> job;
  std::deque<queued> queue;
  std::uint64_t next_job = 1;
};

using self_ptr = caf::stateful_actor<artifact_actor_state>*;

/// Appends `events` to the artifact's stream, then applies them and calls `then(ok, error)`.
/// The actor is its stream's only writer, so appends are ordered by its mailbox.
void append(self_ptr self, std::vector<journal::payload> events, const std::string& op,
            std::function<void(bool, const error&)> then) {
  auto& s = self->state;
  append_and_apply(self, *s.deps.writer, stream_of(s.kind, s.name), journal::any_version, std::move(events), op, &s.st,
                   [then](expected<void> r) { r ? then(true, {}) : then(false, r.err()); });
}

void start_next(self_ptr self);

void start_job(self_ptr self, artifact_request rq, caf::response_promise rp) {
  auto& s = self->state;
  const auto& source = std::get<artifact_cmd::build>(rq.command).source;
  auto decided = decide_start(s.st, source.key());
  if (!decided) {
    rp.deliver(artifact_reply(decided.err()));
    return start_next(self);
  }
  auto id = s.next_job++;
  s.job = running_job{id, source.key(), {{rp, rq.progress}}, rq.op_id};
  append(self, *decided, rq.op_id, [self, id, source, op = rq.op_id](bool ok, const error& err) {
    auto& st = self->state;
    if (!ok) {
      for (auto& w : st.job->waiters)
        w.rp.deliver(artifact_reply(err));
      st.job.reset();
      return start_next(self);
    }
    caf::actor parent = caf::actor_cast<caf::actor>(self);
    auto store = st.deps.store;
    auto kind = st.kind;
    auto name = st.name;
    auto run_job = st.deps.run_job;
    // The job id is an argument, not a capture: CAF 0.17 dereferences a null argument tuple when
    // a void actor function takes none (UBSan: reference binding to null pointer).
    self->system().spawn<caf::detached>(
      [parent, store, kind, name, source, op, run_job](caf::event_based_actor* worker, std::uint64_t job) {
        auto progress = [parent](const std::string& stage, std::uint64_t done, std::uint64_t total) {
          caf::anon_send(parent, progress_atom::value, progress_update{stage, done, total});
        };
        auto who = fmt::format("the {} {} job", to_string(kind), name);
        auto r = guarded<job_result>(who, op, [&] { return run_job(store, kind, name, source, progress); });
        caf::anon_send(parent, job_done_atom::value, job, std::move(r));
        worker->quit();
      },
      id);
  });
}

void start_next(self_ptr self) {
  auto& s = self->state;
  if (s.job || s.queue.empty())
    return;
  auto next = std::move(s.queue.front());
  s.queue.pop_front();
  start_job(self, std::move(next.rq), std::move(next.rp));
}

/// Removes the artifact (not while a job runs, nor while `c.users` VMs use it).
caf::result<artifact_reply> remove(self_ptr self, const artifact_cmd::remove& c, const std::string& op) {
  auto& st = self->state;
  auto rp = self->make_response_promise<artifact_reply>();
  if (st.job) {
    rp.deliver(artifact_reply(make_error(errc::conflict, fmt::format("{} {} is being built ({}); wait for it",
                                                                     to_string(st.kind), st.name, st.job->key))));
    return rp;
  }
  auto decided = decide_remove(st.st, st.kind, st.name, c.users);
  if (!decided) {
    rp.deliver(artifact_reply(decided.err()));
    return rp;
  }
  job_result removed;
  removed.version_id = st.st.current;
  append(self, *decided, op, [self, rp, removed](bool ok, const error& err) mutable {
    if (!ok) {
      rp.deliver(artifact_reply(err));
      return;
    }
    auto r = remove_artifact_files(self->state.deps.store, self->state.kind, self->state.name);
    rp.deliver(r ? artifact_reply(artifact_done{removed, false}) : artifact_reply(r.err()));
  });
  return rp;
}

caf::behavior artifact_actor(self_ptr self, artifact_kind kind, std::string name, artifact_deps deps) {
  auto& s = self->state;
  s.kind = kind;
  s.name = name;
  s.deps = std::move(deps);
  install_exception_handler(self, {fmt::format("the {} {} actor", to_string(kind), name),
                                   [self] { return self->state.job ? self->state.job->op_id : std::string(); },
                                   [self] {
                                     std::vector<caf::response_promise> held;
                                     if (self->state.job)
                                       for (auto& w : self->state.job->waiters)
                                         held.push_back(w.rp);
                                     for (auto& q : self->state.queue)
                                       held.push_back(q.rp);
                                     return held;
                                   }});
  // Fold the stream (short: a few events per build).
  s.st = journal::fold_stream(*s.deps.journal, stream_of(kind, name), std::move(s.st));
  if (s.st.in_progress) {
    // The daemon stopped during a job: record that it failed; its staging dir is garbage.
    append(self, {journal::artifact_failed{s.st.stage, "interrupted: bangerd stopped during the job"}}, "",
           [](bool, const error&) {});
    std::error_code ec;
    if (std::filesystem::exists(s.deps.store.name_dir(kind, name), ec))
      for (const auto& e : std::filesystem::directory_iterator(s.deps.store.name_dir(kind, name), ec))
        if (e.path().filename().string().rfind(".staging-", 0) == 0)
          std::filesystem::remove_all(e.path(), ec);
  }
  return {
    [self](artifact_request& rq) -> caf::result<artifact_reply> {
      if (std::holds_alternative<artifact_cmd::remove>(rq.command))
        return remove(self, std::get<artifact_cmd::remove>(rq.command), rq.op_id);
      auto& st = self->state;
      auto rp = self->make_response_promise<artifact_reply>();
      const auto& source = std::get<artifact_cmd::build>(rq.command).source;
      if (st.job && st.job->key == source.key()) {
        st.job->waiters.push_back({rp, rq.progress}); // same source: share the running job
        return rp;
      }
      if (st.job) {
        st.queue.push_back({std::move(rq), rp});
        return rp;
      }
      start_job(self, std::move(rq), rp);
      return rp;
    },
    [self](progress_atom, const progress_update& u) {
      auto& st = self->state;
      if (!st.job)
        return;
      for (auto& w : st.job->waiters)
        if (w.progress && *w.progress)
          (*w.progress)(u);
      if (u.stage != st.st.stage)
        append(self, {journal::artifact_stage{u.stage}}, st.job->op_id, [](bool, const error&) {});
    },
    [self](job_done_atom, std::uint64_t id, expected<job_result>& out) {
      auto& st = self->state;
      if (!st.job || st.job->id != id)
        return;
      journal::payload ev =
        out ? journal::payload{journal::artifact_ready{out->version_id, out->manifest_sha256, out->bytes, out->summary}}
            : journal::payload{journal::artifact_failed{st.st.stage, out.err().message}};
      append(self, {ev}, st.job->op_id, [self, out](bool ok, const error& err) {
        auto& s2 = self->state;
        auto waiters = std::move(s2.job->waiters);
        s2.job.reset();
        bool first = true;
        for (auto& w : waiters) {
          if (!ok)
            w.rp.deliver(artifact_reply(err));
          else if (!out)
            w.rp.deliver(artifact_reply(out.err()));
          else
            w.rp.deliver(artifact_reply(artifact_done{*out, !first}));
          first = false;
        }
        start_next(self);
      });
    },
    [self](caf::get_atom) { return self->state.st; },
  };
}

} // namespace

caf::actor spawn_artifact_actor(caf::actor_system& sys, artifact_kind kind, const std::string& name,
                                const artifact_deps& deps) {
  return sys.spawn(artifact_actor, kind, name, deps);
}

} // namespace banger::actors
