// Failures that cannot hang anything. Domain errors travel between actors as values (expected<T>);
// this file is for the two ways a bug could otherwise leave a requester waiting forever:
//   - an exception escaping an actor's message handler: install_exception_handler() answers the
//     request being handled (and every request the actor still held) with errc::internal naming
//     the actor, the exception and the op id; the actor then exits (CAF 0.17 ends an actor whose
//     handler threw), the registry forgets it, and the next request for the entity spawns a new
//     one from the journal;
//   - an exception escaping a detached worker's job: guarded() turns it into errc::internal, so
//     the worker still reports its job as done (failed).
// banger errors cross CAF as caf::errors of category "banger" (to_caf / from_caf), so requesters
// that only see a caf::error (the KJ bridge, scoped actors) still get the code and the op id.
// Include from actors' and the daemon's .cpp files (it includes CAF headers).
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>

#include "common/error.hpp"

namespace banger::actors {

/// `e` as a caf::error of category "banger" (code, message and op id kept).
caf::error to_caf(const error& e);
/// A caf::error as a banger error: one made by to_caf as it was; anything else (a timeout, a
/// receiver that is gone) as unavailable, rendered by `sys`, prefixed with `what`.
error from_caf(const caf::error& e, const caf::actor_system& sys, std::string_view what);

/// The text of a caught exception.
std::string describe(const std::exception_ptr& e);

/// errc::internal for a bug in `who` while it handled op `op`: what(), and that it is a bug.
error internal_error(const std::string& who, const std::string& what, const std::string& op);

/// What an actor's exception handler needs from the actor: its name for messages, the op id of
/// the message it is handling, and the promises of requests it holds (queued or running) that
/// would otherwise never be answered once it exits.
struct failure_context {
  std::string who;
  std::function<std::string()> current_op;
  std::function<std::vector<caf::response_promise>()> held;
};

/// Installs the handler described above on `self`. The request being handled is answered with
/// the internal error as a caf::error (to_caf); held promises too. Logs nothing itself.
void install_exception_handler(caf::scheduled_actor* self, failure_context ctx);

/// Runs `fn` (a detached worker's job); an exception becomes errc::internal for `who`/`op`.
template <class T>
expected<T> guarded(const std::string& who, const std::string& op, const std::function<expected<T>()>& fn) {
  try {
    return fn();
  } catch (...) {
    return internal_error(who, describe(std::current_exception()), op);
  }
}

} // namespace banger::actors
