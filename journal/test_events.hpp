// Test-only helpers shared by codec.test.cpp (which defines them) and journal.test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace banger::journal::test {

/// Bytes of a capnp `Event` whose payload union tag is `tag`, built with capnp directly (not
/// with codec::encode) from a `note` message whose tag is then patched.
std::string event_with_tag(std::string_view stream, std::uint64_t version, std::uint16_t tag);

} // namespace banger::journal::test
