// Renderings of stored events for people (one text line) and for tools (one JSON object per
// line, documented in docs/events.md). Pure functions; any thread. nlohmann json stays in
// this file so that headers other modules include do not pull it in.
#include "journal/render.hpp"

#include <chrono>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <type_traits>

namespace banger::journal {

namespace {

nlohmann::ordered_json payload_json(const payload& p) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& f : fields_of(p))
    std::visit([&](const auto& x) { j[std::string(f.name)] = x; }, f.value);
  return j;
}

/// A value as it appears after `key=`: bare when it is a plain word, else double-quoted with
/// `"`, `\` and control characters escaped, so a line always splits back into its fields.
std::string text_value(std::string_view v) {
  bool bare = !v.empty();
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7f)
      bare = false;
  if (bare)
    return std::string(v);
  std::string out = "\"";
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < ' ' || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

std::string payload_text(const payload& p) {
  std::string out;
  for (const auto& f : fields_of(p)) {
    if (!out.empty())
      out += ' ';
    out += f.name;
    out += '=';
    std::visit(
      [&](const auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>)
          out += text_value(x);
        else
          out += std::to_string(x);
      },
      f.value);
  }
  return out;
}

} // namespace

std::string format_time(std::int64_t wall_time_ns) {
  using namespace std::chrono;
  auto t = sys_time<milliseconds>(floor<milliseconds>(nanoseconds(wall_time_ns)));
  auto day = floor<days>(t);
  year_month_day ymd(day);
  hh_mm_ss<milliseconds> hms(t - day);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

std::string to_json_line(const stored_event& e) {
  nlohmann::ordered_json j = {
    {"seq", e.seq},
    {"stream", e.stream},
    {"version", e.version},
    {"time", format_time(e.wall_time_ns)},
    {"op_id", e.op_id},
    {"kind", std::string(kind_of(e.body))},
    {"payload", payload_json(e.body)},
  };
  // Text fields come from the journal and may hold invalid UTF-8: replace, never throw.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string to_text_line(const stored_event& e) {
  return fmt::format("{}  {}  {}@{}  {}  {}  {}", e.seq, format_time(e.wall_time_ns), e.stream, e.version,
                     kind_of(e.body), e.op_id.empty() ? std::string_view("-") : std::string_view(e.op_id),
                     payload_text(e.body));
}

} // namespace banger::journal
