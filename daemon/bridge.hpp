// The CAF <-> KJ bridge. The RPC server runs on one KJ event-loop thread; actors run on CAF's
// scheduler. `ask` sends a request to an actor from the KJ thread without blocking it: a
// short-lived actor makes the request and fulfils a cross-thread promise with the answer.
// Include only from daemon/ .cpp files (pulls in caf/all.hpp).
#pragma once

#include <chrono>
#include <memory>

#include <caf/all.hpp>
#include <kj/async.h>
#include <kj/debug.h>

#include "actors/failure.hpp"
#include "common/error.hpp"

namespace banger::daemon {

template <class R, class... Ts>
kj::Promise<expected<R>> ask(caf::actor_system& sys, const caf::actor& dest, std::chrono::milliseconds timeout,
                             Ts... xs) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<expected<R>>();
  // CAF needs a copyable handler; the fulfiller is move-only and its methods are thread-safe.
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<expected<R>>>>(kj::mv(paf.fulfiller));
  // The unused int: CAF 0.17 dereferences a null argument tuple when a void actor function
  // takes no argument (UBSan: reference binding to null pointer).
  sys.spawn(
    [=](caf::event_based_actor* self, int) {
      self->request(dest, timeout, xs...)
        .then([=](R& r) { (*fulfiller)->fulfill(expected<R>(std::move(r))); },
              [=](caf::error& e) {
                // A banger error (an actor's bug turned into internal, failure.hpp) keeps its code
                // and op id; anything else (a timeout, an actor that is gone) is unavailable.
                (*fulfiller)->fulfill(expected<R>(actors::from_caf(e, self->system(), "actor request failed: ")));
              });
    },
    0);
  return kj::mv(paf.promise);
}

/// Runs blocking `fn` on a detached CAF worker (its own thread) and resolves with its result on
/// the KJ thread: file I/O and compression never run on the RPC loop.
template <class F>
auto run_blocking(caf::actor_system& sys, F fn) -> kj::Promise<decltype(fn())> {
  using R = decltype(fn());
  auto paf = kj::newPromiseAndCrossThreadFulfiller<R>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<R>>>(kj::mv(paf.fulfiller));
  sys.spawn<caf::detached>( // the int: see ask()
    [fulfiller, fn](caf::event_based_actor* self, int) mutable {
      // A bug in fn must not leave the RPC waiting: it fails the call (an exception on the wire).
      try {
        (*fulfiller)->fulfill(fn());
      } catch (...) {
        (*fulfiller)
          ->reject(
            KJ_EXCEPTION(FAILED, "internal error (a bug in bangerd)", actors::describe(std::current_exception())));
      }
      self->quit();
    },
    0);
  return kj::mv(paf.promise);
}

} // namespace banger::daemon
