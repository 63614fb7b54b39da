// Structured logging: one JSON object per line ({"time","level","op","msg"}), to a file and,
// in the foreground, to stderr. A logger is a value passed to whoever logs (no global
// registry); copies share the sinks. Thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "common/error.hpp"

namespace spdlog {
class logger;
}

namespace banger {

enum class log_level { debug, info, warn, error };

class logger {
public:
  /// A logger that drops everything.
  logger();
  /// Appends JSON lines to `file` (created 0600), and to stderr when `to_stderr`.
  static expected<logger> open(const std::filesystem::path& file, bool to_stderr);

  template <class... A>
  void debug(std::string_view op, fmt::format_string<A...> f, A&&... a) const {
    emit(log_level::debug, op, fmt::format(f, std::forward<A>(a)...));
  }
  template <class... A>
  void info(std::string_view op, fmt::format_string<A...> f, A&&... a) const {
    emit(log_level::info, op, fmt::format(f, std::forward<A>(a)...));
  }
  template <class... A>
  void warn(std::string_view op, fmt::format_string<A...> f, A&&... a) const {
    emit(log_level::warn, op, fmt::format(f, std::forward<A>(a)...));
  }
  template <class... A>
  void error(std::string_view op, fmt::format_string<A...> f, A&&... a) const {
    emit(log_level::error, op, fmt::format(f, std::forward<A>(a)...));
  }

  void emit(log_level level, std::string_view op, std::string_view msg) const;
  void flush() const;

private:
  std::shared_ptr<spdlog::logger> impl_;
};

/// Escapes a string for inclusion between JSON double quotes.
std::string json_escape(std::string_view s);

} // namespace banger
