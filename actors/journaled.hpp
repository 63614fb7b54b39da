// The one way an entity appends to its stream and applies what it appended: through the journal
// writer actor (the daemon's only writer), then each event applied, in order, with the version
// and the wall time the journal stored for it, so the entity's state is exactly what a fold of
// the stream gives. An async form for event-based actors (the reply comes as a message) and a
// blocking form for detached actors and main(). Include from .cpp files (caf/all.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/failure.hpp"
#include "actors/messages.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

inline constexpr std::chrono::seconds append_timeout{30};

/// The request for `events` on `stream`, each with op id `op`.
inline journal::append_request append_request_of(std::string stream, std::uint64_t expected_version,
                                                 const std::vector<journal::payload>& events, const std::string& op) {
  journal::append_request req;
  req.stream = std::move(stream);
  req.expected_version = expected_version;
  for (const auto& e : events)
    req.events.push_back({op, e});
  return req;
}

/// `state` with `events` applied as the journal stored them (`r`: the new stream version and each
/// event's wall time). `apply(State, stored_event)` is found by argument-dependent lookup.
template <class State>
State apply_appended(State state, const std::string& stream, const std::vector<journal::payload>& events,
                     const journal::append_result& r) {
  std::uint64_t v = r.stream_version - events.size();
  for (std::size_t i = 0; i < events.size(); ++i) {
    journal::stored_event e;
    e.seq = r.first_seq + i;
    e.stream = stream;
    e.version = ++v;
    e.wall_time_ns = i < r.wall_times_ns.size() ? r.wall_times_ns[i] : 0;
    e.body = events[i];
    state = apply(std::move(state), e);
  }
  return state;
}

/// Appends `events` to `stream` through `writer` from an event-based actor, then applies them to
/// `*state` and calls `then` with the outcome (nothing is applied when the journal refused). The
/// actor must be the stream's only writer, so its mailbox orders its appends; `state` must live
/// as long as the actor (its own state).
template <class State>
void append_and_apply(caf::event_based_actor* self, const caf::actor& writer, std::string stream,
                      std::uint64_t expected_version, std::vector<journal::payload> events, const std::string& op,
                      State* state, std::function<void(expected<void>)> then) {
  auto req = append_request_of(stream, expected_version, events, op);
  self->request(writer, append_timeout, append_atom::value, std::move(req))
    .then(
      [state, stream, events, then](expected<journal::append_result>& r) {
        if (!r)
          return then(r.err());
        *state = apply_appended(std::move(*state), stream, events, *r);
        then({});
      },
      [self, then](caf::error& e) { then(from_caf(e, self->system(), "journal: ")); });
}

/// The same, blocking (detached actors, main()): the append's outcome once it is durable and
/// applied.
template <class State>
expected<void> append_and_apply_blocking(caf::actor_system& sys, const caf::actor& writer, std::string stream,
                                         std::uint64_t expected_version, std::vector<journal::payload> events,
                                         const std::string& op, State& state) {
  auto req = append_request_of(stream, expected_version, events, op);
  caf::scoped_actor self{sys};
  expected<void> out = make_error(errc::unavailable, "journal: the writer did not answer");
  self->request(writer, append_timeout, append_atom::value, std::move(req))
    .receive(
      [&](expected<journal::append_result>& r) {
        if (!r) {
          out = r.err();
          return;
        }
        state = apply_appended(std::move(state), stream, events, *r);
        out = expected<void>{};
      },
      [&](caf::error& e) { out = from_caf(e, sys, "journal: "); });
  return out;
}

/// A blocking append whose result is all the caller needs (the daemon's own stream).
inline expected<journal::append_result> append_blocking(caf::actor_system& sys, const caf::actor& writer,
                                                        journal::append_request req) {
  caf::scoped_actor self{sys};
  expected<journal::append_result> out = make_error(errc::unavailable, "journal: the writer did not answer");
  self->request(writer, append_timeout, append_atom::value, std::move(req))
    .receive([&](expected<journal::append_result>& r) { out = std::move(r); },
             [&](caf::error& e) { out = from_caf(e, sys, "journal: "); });
  return out;
}

} // namespace banger::actors
