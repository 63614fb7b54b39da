// Kernels and images ("artifacts"): the pure core of their actors. State is folded from the
// artifact's journal stream ("kernel/<name>", "image/<name>") with apply(); decide_*() say what
// a command would append, or why it is refused. No I/O; any thread.
//
// A stream reads: (artifact_started artifact_stage* (artifact_ready | artifact_failed))* with
// artifact_removed between jobs. Every artifact_ready adds an immutable version and makes it
// current; artifact_removed forgets every version.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "journal/events.hpp"

namespace banger::actors {

enum class artifact_kind { kernel, image };

std::string_view to_string(artifact_kind k); ///< "kernel" / "image"
std::string stream_of(artifact_kind k, std::string_view name);

/// Names: 1-63 characters of a-z, 0-9, '-', '.', '_', starting with a letter or digit.
expected<void> validate_artifact_name(artifact_kind k, std::string_view name);

struct artifact_version {
  std::string id;
  std::string manifest_sha256;
  std::uint64_t bytes = 0;
  std::string summary;
  std::string source;
  std::int64_t created_ns = 0;
};

struct artifact_state {
  std::uint64_t stream_version = 0;
  std::optional<std::string> in_progress; ///< source of the job started and not yet finished
  std::string stage;                      ///< its current stage
  std::optional<std::string> last_failure;
  std::vector<artifact_version> versions; ///< ready versions still on disk, oldest first
  std::string current;                    ///< id of the current version; empty: none

  const artifact_version* current_version() const;
};

artifact_state apply(artifact_state s, const journal::stored_event& e);

/// Starting a job. Refused (conflict) while another job is recorded as in progress.
expected<std::vector<journal::payload>> decide_start(const artifact_state& s, const std::string& source);

/// Removing the artifact. not_found when there is nothing to remove; conflict while a job runs
/// or while `users` VMs use it.
expected<std::vector<journal::payload>> decide_remove(const artifact_state& s, artifact_kind k, std::string_view name,
                                                      std::uint32_t users);

} // namespace banger::actors
