// JSON-lines logger on spdlog; see log.hpp.
#include "common/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace banger {

logger::logger() = default;

expected<logger> logger::open(const std::filesystem::path& file, bool to_stderr) {
  // Create the file 0600 ourselves: spdlog would create it with the umask's mode.
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(errc::operation_failed, fmt::format("open log file {}: {}", file.string(), std::strerror(errno)));
  ::close(fd);
  std::vector<spdlog::sink_ptr> sinks;
  try {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string()));
  } catch (const std::exception& e) {
    return make_error(errc::operation_failed, fmt::format("open log file {}: {}", file.string(), e.what()));
  }
  if (to_stderr)
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto l = std::make_shared<spdlog::logger>("bangerd", sinks.begin(), sinks.end());
  l->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%v})", spdlog::pattern_time_type::utc);
  l->set_level(spdlog::level::debug);
  l->flush_on(spdlog::level::debug);
  logger out;
  out.impl_ = std::move(l);
  return out;
}

void logger::emit(log_level level, std::string_view op, std::string_view msg) const {
  if (!impl_)
    return;
  auto lvl = level == log_level::debug  ? spdlog::level::debug
             : level == log_level::info ? spdlog::level::info
             : level == log_level::warn ? spdlog::level::warn
                                        : spdlog::level::err;
  if (op.empty())
    impl_->log(lvl, "\"msg\":\"{}\"", json_escape(msg));
  else
    impl_->log(lvl, "\"op\":\"{}\",\"msg\":\"{}\"", json_escape(op), json_escape(msg));
}

void logger::flush() const {
  if (impl_)
    impl_->flush();
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (c < 0x20)
        out += fmt::format("\\u{:04x}", c);
      else
        out += static_cast<char>(c);
    }
  }
  return out;
}

} // namespace banger
