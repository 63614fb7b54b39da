// See slice.hpp. export_vm reads the journal read-only; import_slice opens it as a writer for
// one atomic append. Everything else is pure.
#include "tools/replay/slice.hpp"

#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "actors/vm/vm.hpp"
#include "common/base64.hpp"
#include "common/text.hpp"
#include "journal/codec.hpp"
#include "journal/journal.hpp"
#include "journal/render.hpp"

namespace banger::replay {

namespace {

using ojson = nlohmann::ordered_json;

constexpr std::size_t max_line_bytes = 1u << 20;
constexpr int max_json_depth = 8;

/// Nesting depth of a JSON text (brackets outside strings); refuses hostile nesting before the
/// parser recurses into it.
int json_depth(std::string_view s) {
  int depth = 0, max = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max = std::max(max, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max;
}

bool printable_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f)
      return false;
  return true;
}

ojson payload_of(const journal::stored_event& e) { return ojson::parse(journal::to_json_line(e))["payload"]; }

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

error bad_line(std::size_t line, std::string what) {
  return make_error(errc::bad_request, fmt::format("slice line {}: {}", line, std::move(what)));
}

/// The object's members must be exactly `keys`.
expected<void> exact_keys(std::size_t line, const ojson& j, std::initializer_list<std::string_view> keys) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end())
      return bad_line(line, fmt::format("unknown field {}", quoted(it.key(), 64)));
  for (auto k : keys)
    if (!j.contains(k))
      return bad_line(line, fmt::format("field \"{}\" is missing", k));
  return {};
}

} // namespace

slice_event make_slice_event(journal::stored_event e) {
  slice_event out;
  out.codec = journal::encode(e);
  out.event = std::move(e);
  return out;
}

expected<slice> export_vm(const journal::journal& j, std::string_view name) {
  if (auto ok = actors::validate_vm_name(name); !ok)
    return ok.err();
  slice s;
  s.stream = actors::vm_stream(name);
  s.schema_version = journal::schema_version;
  s.banger_version = BANGER_VERSION;
  auto evs = j.read_stream(s.stream);
  if (!evs)
    return std::move(evs).err();
  if (evs->empty())
    return make_error(errc::not_found, fmt::format("no VM {} in the journal at {} (stream {} has no events)", name,
                                                   j.dir().string(), s.stream));
  for (auto& e : *evs) {
    if (e.version != s.events.size() + 1)
      return make_error(errc::operation_failed,
                        fmt::format("stream {} has event(s) of kinds this build does not know before version {}; "
                                    "export it with a newer banger-replay",
                                    s.stream, e.version));
    auto raw = j.read_raw(e.seq, 1);
    if (!raw)
      return std::move(raw).err();
    if (raw->empty() || raw->front().seq != e.seq)
      return make_error(errc::operation_failed, fmt::format("journal at {}: seq {} vanished while exporting {}",
                                                            j.dir().string(), e.seq, s.stream));
    s.events.push_back({std::move(e), std::move(raw->front().bytes)});
  }
  return s;
}

std::string write_slice(const slice& s) {
  std::string out = dump(ojson{{"format", slice_format},
                               {"format_version", slice_format_version},
                               {"stream", s.stream},
                               {"schema_version", s.schema_version},
                               {"events", s.events.size()},
                               {"banger_version", s.banger_version}});
  out += '\n';
  for (const auto& se : s.events) {
    const auto& e = se.event;
    out += dump(ojson{{"seq", e.seq},
                      {"version", e.version},
                      {"time", journal::format_time(e.wall_time_ns)},
                      {"wall_time_ns", e.wall_time_ns},
                      {"op_id", e.op_id},
                      {"kind", std::string(journal::kind_of(e.body))},
                      {"payload", payload_of(e)},
                      {"codec", base64_encode(se.codec)}});
    out += '\n';
  }
  return out;
}

expected<slice> parse_slice(std::string_view text) {
  slice s;
  std::uint64_t declared = 0;
  std::size_t line_no = 0;
  std::uint64_t last_seq = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    if (nl == std::string_view::npos)
      return bad_line(line_no + 1, "the file does not end in a newline (truncated?)");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    if (line.size() > max_line_bytes)
      return bad_line(line_no, fmt::format("longer than {} bytes", max_line_bytes));
    if (json_depth(line) > max_json_depth)
      return bad_line(line_no, "JSON nested too deeply");
    auto j = ojson::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return bad_line(line_no, "not a JSON object");

    if (line_no == 1) {
      if (auto ok =
            exact_keys(1, j, {"format", "format_version", "stream", "schema_version", "events", "banger_version"});
          !ok)
        return ok.err();
      if (!j["format"].is_string() || j["format"].get<std::string>() != slice_format)
        return bad_line(1, fmt::format("not a banger journal slice (format is not \"{}\")", slice_format));
      if (!j["format_version"].is_number_unsigned() || j["format_version"].get<std::uint64_t>() == 0)
        return bad_line(1, "format_version is not a positive integer");
      if (j["format_version"].get<std::uint64_t>() > slice_format_version)
        return bad_line(1, fmt::format("format_version {} is newer than this banger-replay reads ({}); use a newer "
                                       "banger-replay",
                                       j["format_version"].get<std::uint64_t>(), slice_format_version));
      if (!j["stream"].is_string())
        return bad_line(1, "stream is not a string");
      s.stream = j["stream"].get<std::string>();
      if (s.stream.rfind("vm/", 0) != 0)
        return bad_line(1, fmt::format("stream {} is not a VM's (vm/<name>)", quoted(s.stream, 80)));
      if (auto ok = actors::validate_vm_name(std::string_view(s.stream).substr(3)); !ok)
        return bad_line(1, ok.err().message);
      if (!j["schema_version"].is_number_unsigned() || j["schema_version"].get<std::uint64_t>() == 0)
        return bad_line(1, "schema_version is not a positive integer");
      if (j["schema_version"].get<std::uint64_t>() > journal::schema_version)
        return bad_line(1, fmt::format("journal schema version {} is newer than this build reads ({})",
                                       j["schema_version"].get<std::uint64_t>(), journal::schema_version));
      s.schema_version = j["schema_version"].get<std::uint32_t>();
      if (!j["events"].is_number_unsigned())
        return bad_line(1, "events is not a count");
      declared = j["events"].get<std::uint64_t>();
      if (!j["banger_version"].is_string() || j["banger_version"].get<std::string>().size() > 64 ||
          !printable_ascii(j["banger_version"].get<std::string>()))
        return bad_line(1, "banger_version is not a short printable string");
      s.banger_version = j["banger_version"].get<std::string>();
      continue;
    }

    if (auto ok =
          exact_keys(line_no, j, {"seq", "version", "time", "wall_time_ns", "op_id", "kind", "payload", "codec"});
        !ok)
      return ok.err();
    if (!j["seq"].is_number_unsigned() || j["seq"].get<std::uint64_t>() == 0)
      return bad_line(line_no, "seq is not a positive integer");
    if (!j["version"].is_number_unsigned())
      return bad_line(line_no, "version is not a positive integer");
    if (!j["wall_time_ns"].is_number_integer())
      return bad_line(line_no, "wall_time_ns is not an integer");
    for (const char* k : {"time", "op_id", "kind", "codec"})
      if (!j[k].is_string())
        return bad_line(line_no, fmt::format("{} is not a string", k));
    if (!j["payload"].is_object())
      return bad_line(line_no, "payload is not an object");
    const auto seq = j["seq"].get<std::uint64_t>();
    const auto version = j["version"].get<std::uint64_t>();
    if (seq <= last_seq)
      return bad_line(line_no,
                      fmt::format("seq {} does not follow seq {}: events must be in journal order", seq, last_seq));
    last_seq = seq;
    if (version != s.events.size() + 1)
      return bad_line(line_no, fmt::format("version {} where {} comes next (versions run 1..N without a gap)", version,
                                           s.events.size() + 1));
    auto bytes = base64_decode(j["codec"].get<std::string>());
    if (!bytes)
      return bad_line(line_no, "codec is not valid base64");
    auto e = journal::decode(seq, *bytes);
    if (!e)
      return bad_line(line_no, fmt::format("codec does not decode: {}", e.err().message));
    e->seq = seq;
    if (std::holds_alternative<journal::unknown_event>(e->body))
      return bad_line(line_no, "codec holds an event of a kind this build does not know");
    if (e->stream != s.stream)
      return bad_line(line_no, fmt::format("codec says stream {}, the header {}", quoted(e->stream, 80), s.stream));
    if (e->version != version)
      return bad_line(line_no, fmt::format("codec says version {}, the line {}", e->version, version));
    if (e->wall_time_ns != j["wall_time_ns"].get<std::int64_t>())
      return bad_line(line_no, "wall_time_ns disagrees with the codec");
    if (j["time"].get<std::string>() != journal::format_time(e->wall_time_ns))
      return bad_line(line_no, "time disagrees with the codec");
    if (e->op_id != j["op_id"].get<std::string>())
      return bad_line(line_no, "op_id disagrees with the codec");
    if (e->op_id.size() > 64 || !printable_ascii(e->op_id))
      return bad_line(line_no, "op_id is not a short printable string");
    if (j["kind"].get<std::string>() != journal::kind_of(e->body))
      return bad_line(line_no, fmt::format("kind {} disagrees with the codec ({})",
                                           quoted(j["kind"].get<std::string>(), 40), journal::kind_of(e->body)));
    if (j["payload"] != payload_of(*e))
      return bad_line(line_no, "payload disagrees with the codec (edited by hand? re-encode it)");
    s.events.push_back({std::move(*e), std::move(*bytes)});
  }
  if (line_no == 0)
    return make_error(errc::bad_request, "slice is empty: no header line");
  if (s.events.size() != declared)
    return make_error(errc::bad_request, fmt::format("slice header says {} events, the file has {} (truncated?)",
                                                     declared, s.events.size()));
  if (s.events.empty())
    return make_error(errc::bad_request, "slice has no events");
  return s;
}

expected<slice> read_slice(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return make_error(errc::not_found, fmt::format("cannot read slice {}: {}", path.string(), ec.message()));
  if (size > max_slice_bytes)
    return make_error(errc::bad_request, fmt::format("slice {} is {} bytes, more than the {} a slice may have",
                                                     path.string(), size, max_slice_bytes));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in && !in.eof())
    return make_error(errc::operation_failed, fmt::format("cannot read slice {}", path.string()));
  auto s = parse_slice(buf.str());
  if (!s)
    return make_error(s.err().code, fmt::format("{}: {}", path.string(), s.err().message));
  return s;
}

expected<import_result> import_slice(const slice& s, const std::filesystem::path& dir, std::string_view as_name) {
  std::string stream = s.stream;
  if (!as_name.empty()) {
    if (auto ok = actors::validate_vm_name(as_name); !ok)
      return ok.err();
    stream = actors::vm_stream(as_name);
  }
  if (s.events.empty())
    return make_error(errc::bad_request, "slice has no events");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error(errc::operation_failed,
                      fmt::format("cannot create journal directory {}: {}", dir.string(), ec.message()));
  auto j = journal::journal::open(dir);
  if (!j) {
    if (j.err().code == errc::unavailable)
      return make_error(errc::unavailable,
                        fmt::format("journal at {} is held by another process: bangerd is running on it; import into "
                                    "another --journal DIR",
                                    dir.string()));
    return std::move(j).err();
  }
  auto have = (*j)->stream_version(stream);
  if (!have)
    return std::move(have).err();
  if (*have != 0)
    return make_error(errc::already_exists,
                      fmt::format("journal at {} already has stream {} ({} events); import never merges: use --as NAME "
                                  "or another --journal DIR",
                                  dir.string(), stream, *have));
  journal::append_request req;
  req.stream = stream;
  req.expected_version = 0;
  for (const auto& se : s.events) {
    req.events.push_back({se.event.op_id, se.event.body});
    req.wall_times_ns.push_back(se.event.wall_time_ns);
  }
  auto r = (*j)->append(std::move(req));
  if (!r)
    return std::move(r).err();
  return import_result{stream, s.events.size(), r->first_seq, r->last_seq};
}

} // namespace banger::replay
