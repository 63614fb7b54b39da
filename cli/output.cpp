#include "cli/output.hpp"

#include <cstdint>
#include <cstdlib>
#include <unistd.h>

#include <fmt/core.h>

namespace banger::cli {

bool use_colour(int fd) {
  const char* no = std::getenv("NO_COLOR");
  if (no != nullptr && *no != '\0')
    return false;
  return ::isatty(fd) == 1;
}

std::string paint(std::string_view s, std::string_view sgr, bool on) {
  if (!on)
    return std::string(s);
  return fmt::format("\x1b[{}m{}\x1b[0m", sgr, s);
}

std::string human_duration_ms(std::uint64_t ms) {
  if (ms < 60'000)
    return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  std::uint64_t s = ms / 1000;
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400)
    return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

} // namespace banger::cli
