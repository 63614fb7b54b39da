// A portable journal slice (`banger-replay export` / `import` / `rerun FILE`): one VM stream as
// a text file, one JSON object per line, for bug reports. Drawn (docs/replay.md has every field):
//
//   line 1    {"format":"banger-journal-slice","format_version":1,"stream":"vm/web",
//              "schema_version":1,"events":N,"banger_version":"0.1.0"}
//   line 1+k  {"seq":S,"version":k,"time":"RFC 3339","wall_time_ns":T,"op_id":"op-1a2b3c",
//              "kind":"vm_created","payload":{...},"codec":"<base64 of the stored value>"}
//
// `codec` is the value exactly as the journal stored it (journal/codec.hpp); it is what import
// writes back. The readable fields are checked against it, so a file edited by hand must be
// re-encoded (or rejected). seq is the source journal's; import appends with the target's.
// Parsing validates everything and names the line at fault: nothing is trusted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "journal/events.hpp"

namespace banger::journal {
class journal;
}

namespace banger::replay {

inline constexpr std::string_view slice_format = "banger-journal-slice";
inline constexpr std::uint32_t slice_format_version = 1;
/// Files larger than this are refused unread (a VM's stream is a few KiB per start).
inline constexpr std::uintmax_t max_slice_bytes = 256ull << 20;

struct slice_event {
  journal::stored_event event;
  std::string codec; ///< the stored value; decode(event.seq, codec) == event
};

struct slice {
  std::string stream; ///< "vm/<name>"
  std::uint32_t schema_version = 0;
  std::string banger_version;
  std::vector<slice_event> events; ///< versions 1..N in order
};

/// `e` with its value encoded afresh (tests alter recordings this way).
slice_event make_slice_event(journal::stored_event e);

/// The whole stream of VM `name` (read-only use of `j`). not_found when it has no events;
/// operation_failed when it has events of kinds this build does not know.
expected<slice> export_vm(const journal::journal& j, std::string_view name);

/// The slice as text (header line, then one line per event; each line ends in '\n').
std::string write_slice(const slice& s);

/// Parses and validates a slice: header (format, version, stream vm/<DNS label>, schema version
/// this build reads, event count), each line's fields and their types, base64, that the codec
/// bytes decode to a known kind and agree with the readable fields, seqs increasing and versions
/// 1..N. bad_request naming the line on anything else.
expected<slice> parse_slice(std::string_view text);
/// Reads `path` (at most max_slice_bytes) and parses it; errors name the file.
expected<slice> read_slice(const std::filesystem::path& path);

struct import_result {
  std::string stream;
  std::uint64_t events = 0, first_seq = 0, last_seq = 0;
};

/// Appends `s` (parsed, so valid) to the journal in `dir` (created if needed) as stream
/// vm/<as_name> (the slice's own name when empty), in one atomic append keeping order, op ids
/// and wall times. Refuses a stream that already has events (already_exists), a journal another
/// process holds (unavailable: bangerd runs on it), and an invalid `as_name`; then nothing is
/// written.
expected<import_result> import_slice(const slice& s, const std::filesystem::path& dir, std::string_view as_name);

} // namespace banger::replay
