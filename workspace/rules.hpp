// The rules a workspace's names follow, shared by the CLI (which checks before it reads
// anything) and the daemon (which checks again where it uses them). Pure; any thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger::workspace {

/// Where a workspace lands when no --guest-path is given: /root/ and the checkout's directory
/// name ("/root/repo" for /home/me/repo).
std::string default_guest_path(const std::filesystem::path& top);

/// A guest path for a workspace: absolute, strictly below /root (a workspace never replaces the
/// home itself), '/'-separated components that are not empty, "." or "..", without NUL or
/// control characters, at most 255 bytes a component and 1024 in all. errc::bad_request says
/// which rule it breaks.
expected<void> validate_guest_path(std::string_view path);

/// A shipped entry's path, relative to the workspace: components that are not empty, "." or
/// ".." (any other byte but NUL is allowed: names are shipped byte for byte), none called
/// ".git" (the workspace's own repository is made by banger, not shipped), at most 255 bytes a
/// component and 4095 in all.
expected<void> validate_entry_path(std::string_view path);

} // namespace banger::workspace
