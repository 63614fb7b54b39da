// Terminal output helpers: colour only on a TTY and never under NO_COLOR.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace banger::cli {

/// Whether stream `fd` (1 or 2) may carry colour.
bool use_colour(int fd);

/// Wraps `s` in an SGR colour (e.g. "31" red, "1" bold) when `on`.
std::string paint(std::string_view s, std::string_view sgr, bool on);

/// "3m12s", "2h05m", "45.2s".
std::string human_duration_ms(std::uint64_t ms);

// human_bytes() ("12.0 MiB") is in common/text.hpp.

} // namespace banger::cli
