// The guest's own name in its /etc/hosts, as Debian's installer puts it: "127.0.1.1 <name>",
// so that programs resolving the hostname (sudo, hostname -f, many test suites) get an answer
// without DNS. Pure; tested on the host (banger-init writes the result).
#pragma once

#include <string>
#include <string_view>

namespace banger::guest {

/// `hosts` (an /etc/hosts text, maybe empty) with one "127.0.1.1\t<name>" line: any earlier
/// 127.0.1.1 line is replaced, every other line kept as it was, and an empty file gets
/// localhost lines first. `hosts` unchanged when `name` is empty.
std::string hosts_with_name(std::string_view hosts, std::string_view name);

} // namespace banger::guest
