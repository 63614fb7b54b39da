// Message vocabulary shared by the actors and the daemon's CAF<->KJ bridge. Include this (not
// caf/all.hpp) from code that only names messages. Types sent only within this process are
// marked CAF_ALLOW_UNSAFE_MESSAGE_TYPE: they are never serialised.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "common/error.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

using append_atom = caf::atom_constant<caf::atom("append")>;
using spawn_atom = caf::atom_constant<caf::atom("spawn")>;
using find_atom = caf::atom_constant<caf::atom("find")>;
using count_atom = caf::atom_constant<caf::atom("count")>;

/// Reply to (append_atom, append_request): the journal's outcome as a value.
struct append_reply {
  bool ok = false;
  journal::append_result result;
  error err;
};

/// Entity counts by kind ("vm" -> 3); kinds with no entity are present with 0.
using entity_counts = std::map<std::string, std::uint32_t>;

} // namespace banger::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::journal::append_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::append_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::entity_counts)
