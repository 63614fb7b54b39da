// Human and JSON renderings of stored events, shared by `banger events` and `banger-replay`.
#pragma once

#include <string>

#include "journal/events.hpp"

namespace banger::journal {

/// One JSON object on one line: {"seq":..,"stream":..,"version":..,"time":"RFC3339",
/// "op_id":..,"kind":..,"payload":{...}}. The schema is documented in docs/events.md.
std::string to_json_line(const stored_event& e);

/// One line for people: "SEQ  TIME  STREAM@VERSION  KIND  OP  key=value ...".
std::string to_text_line(const stored_event& e);

/// RFC 3339 UTC time with milliseconds.
std::string format_time(std::int64_t wall_time_ns);

} // namespace banger::journal
