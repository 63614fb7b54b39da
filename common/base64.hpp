// Standard base64 (RFC 4648's alphabet, '=' padded): the replay slice's codec field and
// Docker's credential file use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace banger {

std::string base64_encode(std::string_view in);
/// Strict: the standard alphabet, padded to a multiple of 4, no whitespace, no stray bits;
/// nothing otherwise.
std::optional<std::string> base64_decode(std::string_view in);

} // namespace banger
