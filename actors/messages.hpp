// Message vocabulary shared by the actors and the daemon's CAF<->KJ bridge. Include this (not
// caf/all.hpp) from code that only names messages. Types sent only within this process are
// marked CAF_ALLOW_UNSAFE_MESSAGE_TYPE: they are never serialised.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "actors/image/jobs.hpp"
#include "common/error.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

using append_atom = caf::atom_constant<caf::atom("append")>;
using spawn_atom = caf::atom_constant<caf::atom("spawn")>;
using find_atom = caf::atom_constant<caf::atom("find")>;
using count_atom = caf::atom_constant<caf::atom("count")>;

using job_done_atom = caf::atom_constant<caf::atom("job_done")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;

/// Entity counts by kind ("vm" -> 3); kinds with no entity are present with 0.
using entity_counts = std::map<std::string, std::uint32_t>;

struct progress_update {
  std::string stage;
  std::uint64_t done = 0;
  std::uint64_t total = 0; ///< 0: unknown
};

/// Called by the artifact actor (on a CAF thread) for each progress update; must be
/// thread-safe and must not block.
using progress_sink = std::shared_ptr<std::function<void(const progress_update&)>>;

/// A kernel's or image's commands as typed values (the artifact actor dispatches on them).
namespace artifact_cmd {
/// A build, import or pull of a new version from `source`.
struct build {
  artifact_source source;
};
/// Removes the artifact and all its versions; refused while `users` VMs (counted by the
/// catalog, which serialises this against VM creates) use it.
struct remove {
  std::uint32_t users = 0;
};
} // namespace artifact_cmd

using artifact_command = std::variant<artifact_cmd::build, artifact_cmd::remove>;

struct artifact_request {
  artifact_command command;
  std::string op_id;
  progress_sink progress; ///< may be null; builds report their stages to it
};

/// What a command did: the version made (or, for remove, the version that was current).
struct artifact_done {
  job_result result;
  bool joined = false; ///< the build joined a job already running for the same source
};
using artifact_reply = expected<artifact_done>;

} // namespace banger::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::artifact_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::progress_update)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::expected<banger::actors::artifact_done>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::expected<banger::actors::job_result>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::artifact_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::job_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::error)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::journal::append_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::expected<banger::journal::append_result>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::entity_counts)
