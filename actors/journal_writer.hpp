// The journal writer actor: the daemon's one way to append. It runs detached (its own thread,
// since an append blocks on fsync) and group-commits: appends that queue in its mailbox while
// a batch is being written go out together in the next synced batch.
//
// Messages:
//   (append_atom, journal::append_request) -> expected<journal::append_result>
// Entities append through actors/journaled.hpp, which applies what was appended.
// The journal must outlive the actor.
#pragma once

#include <caf/fwd.hpp>

namespace banger::journal {
class journal;
}

namespace banger::actors {

caf::actor spawn_journal_writer(caf::actor_system& sys, journal::journal& j);

} // namespace banger::actors
