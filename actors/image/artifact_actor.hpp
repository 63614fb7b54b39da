// The artifact actor: one per kernel or image name (spawned through the registry), so two
// commands for one name are serialised in its mailbox while other names proceed in parallel.
// It folds its journal stream at spawn, appends every transition before applying it, and runs
// the blocking job (jobs.hpp) in a detached worker that reports progress and its outcome back
// as messages. A build whose source matches the running job joins it and gets its result; a
// different one waits its turn. A job that throws fails like any other (internal, journaled as
// artifact_failed); a bug in the actor itself answers every waiter with internal (failure.hpp).
//
// Messages (include actors/messages.hpp):
//   (artifact_request{build})   -> artifact_reply   after the job (or the joined job) ends
//   (artifact_request{remove})  -> artifact_reply   refused while a job runs or `users` VMs
//                                                   (counted by the catalog) use it
//   (caf::get_atom)             -> artifact_state
#pragma once

#include <functional>

#include <caf/fwd.hpp>

#include "actors/image/jobs.hpp"

namespace banger::journal {
class journal;
}

namespace banger::actors {

/// What a job runs (run_artifact_job; tests put in others). Called on the job's worker thread.
using artifact_job_fn =
  std::function<expected<job_result>(const artifact_store& store, artifact_kind k, const std::string& name,
                                     const artifact_source& source, const job_progress& progress)>;

struct artifact_deps {
  journal::journal* journal = nullptr; ///< outlives the actor
  caf::actor* writer = nullptr;        ///< the journal writer; outlives the actor
  artifact_store store;
  artifact_job_fn run_job = run_artifact_job;
};

caf::actor spawn_artifact_actor(caf::actor_system& sys, artifact_kind kind, const std::string& name,
                                const artifact_deps& deps);

} // namespace banger::actors
