// Text for messages: user- and network-supplied strings shown safely in errors and logs.
// Pure functions, no state; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace banger {

struct quoted_fn {
  /// `s` in double quotes for an error or log message, safe for any bytes: `"` and `\` are
  /// escaped, printable ASCII is kept, and every other byte (control characters, DEL, anything
  /// >= 0x80, so also valid UTF-8) is written as `\xNN`. At most `max` bytes of `s` are shown; a
  /// longer `s` ends in `...` before the closing quote, so a hostile megabyte name never floods a
  /// message. Use it instead of fmt's debug presentation (`?`), which asserts on invalid UTF-8.
  std::string operator()(std::string_view s, std::size_t max = 200) const;
};

/// `quoted(s)` / `quoted(s, max)`: see quoted_fn. An object rather than a function so that a call
/// with a std::string or const char* argument never finds std::quoted (<iomanip>) by
/// argument-dependent lookup: unqualified lookup that finds an object does no ADL.
inline constexpr quoted_fn quoted{};

/// A byte count for people: "512 B", "1.5 KiB", "12.0 MiB", "3.2 GiB".
std::string human_bytes(std::uint64_t bytes);

} // namespace banger
