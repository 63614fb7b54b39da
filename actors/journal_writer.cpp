// Journal writer actor; see journal_writer.hpp. Runs on its own thread (detached).
// Group commit: the first append of a round schedules a `flush` to itself; every append that
// arrives before the flush is processed joins the round; the flush writes them all in one
// synced batch and answers each promise.
#include "actors/journal_writer.hpp"

#include <vector>

#include <caf/all.hpp>

#include "actors/failure.hpp"
#include "actors/messages.hpp"

namespace banger::actors {

namespace {

struct pending_append {
  journal::append_request req;
  caf::response_promise rp;
};

struct writer_state {
  std::vector<pending_append> pending;
  std::vector<pending_append> writing; ///< the round being written (answered by the handler if it throws)
  static inline const char* name = "journal_writer";
};

caf::behavior journal_writer(caf::stateful_actor<writer_state>* self, journal::journal* j) {
  install_exception_handler(self, {"the journal writer", [] { return std::string(); },
                                   [self] {
                                     std::vector<caf::response_promise> held;
                                     for (auto* v : {&self->state.pending, &self->state.writing})
                                       for (auto& p : *v)
                                         held.push_back(p.rp);
                                     return held;
                                   }});
  return {
    [self](append_atom, journal::append_request& req) {
      if (self->state.pending.empty())
        self->send(self, caf::flush_atom::value);
      self->state.pending.push_back({std::move(req), self->make_response_promise()});
    },
    [self, j](caf::flush_atom) {
      self->state.writing = std::move(self->state.pending);
      self->state.pending.clear();
      auto& round = self->state.writing;
      std::vector<journal::append_request> reqs;
      reqs.reserve(round.size());
      for (auto& p : round)
        reqs.push_back(std::move(p.req));
      auto results = j->append_batch(std::move(reqs));
      for (std::size_t i = 0; i < round.size(); ++i) {
        round[i].rp.deliver(std::move(results[i]));
      }
      round.clear();
    },
  };
}

} // namespace

caf::actor spawn_journal_writer(caf::actor_system& sys, journal::journal& j) {
  return sys.spawn<caf::detached>(journal_writer, &j);
}

} // namespace banger::actors
