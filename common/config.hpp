// bangerd's configuration: CONFIG_DIR/config.toml, a flat subset of TOML (`key = value` lines,
// `#` comments, values: "quoted strings", true/false, integers). Pure parsing; the caller reads
// the file. Unknown keys and malformed lines are errors naming the line, so a typo never passes
// silently.
//
//   bridge = "br-fc"            # the Linux bridge VMs' taps join ("br-fc" or "br-fc-*")
//   subnet = "172.30.0.0/24"    # the bridge's network; the bridge takes the first address
//   nat = false                 # masquerade guest traffic leaving the host
//   network = true              # false: VMs get no network device (no root helper needed)
//   boot_snapshots = true       # a new VM resumes a booted guest of its shape (docs/boot-snapshots.md)
//
//   [[file_sync]]               # a file or directory of the owner's home, copied into each VM
//   host = "~/.gitconfig"       # under the home ("~/..." or an absolute path in it)
//   guest = "/root/.gitconfig"  # strictly below /root (the work disk)
//   mode = 0o600                # optional (or "0600"): the files' mode (default: each file's own)
//
// The `[[file_sync]]` tables come after the top-level keys (TOML's rule). The CLI reads them
// (docs/workspaces.md, "Your host setup in the guest"); bangerd only checks their shape.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace banger {

/// One `[[file_sync]]` table: its keys as written (host is not resolved here).
struct file_sync_rule {
  std::string host, guest;
  std::optional<std::uint32_t> mode; ///< permission bits, 0 to 0777
  std::size_t line = 0;              ///< where the table starts, for messages
};

struct daemon_config {
  std::string bridge = "br-fc";
  std::string subnet = "172.30.0.0/24";
  bool nat = false;
  bool network = true;
  bool boot_snapshots = true;
  std::vector<file_sync_rule> file_sync;
};

expected<daemon_config> parse_config(std::string_view text, std::string_view origin);

/// Reads `path`; a missing file is the defaults.
expected<daemon_config> load_config(const std::filesystem::path& path);

} // namespace banger
