// banger's known_hosts file ("<name>.vm <type> <base64>" per VM, read by `vm ssh` through
// OpenSSH's UserKnownHostsFile): one VM's line replaced or removed. Blocking file I/O; any
// thread (writers of one file are serialised by an flock on FILE.lock).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger::actors {

/// Rewrites `file` with the line of `alias` replaced by "alias key" (removed when `key` is
/// empty), keeping every other line. The new content goes to a temporary file beside it, is
/// synced and read back, and only then renamed over `file`: a full disk or any failed write
/// leaves the old file exactly as it was (and the error says what failed). `alias` and `key`
/// must be one line each without spaces in the alias (bad_request otherwise).
expected<void> update_known_hosts(const std::filesystem::path& file, std::string_view alias, std::string_view key);

/// "ssh-ed25519 AAAA... comment\n" -> "ssh-ed25519 AAAA..." (type and key, nothing else); empty
/// when `pub` is not a public key line of a known type with base64 key material.
std::string host_key_of(std::string_view pub);

} // namespace banger::actors
