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
#pragma once

#include <filesystem>
#include <string>

#include "common/error.hpp"

namespace banger {

struct daemon_config {
  std::string bridge = "br-fc";
  std::string subnet = "172.30.0.0/24";
  bool nat = false;
  bool network = true;
  bool boot_snapshots = true;
};

expected<daemon_config> parse_config(std::string_view text, std::string_view origin);

/// Reads `path`; a missing file is the defaults.
expected<daemon_config> load_config(const std::filesystem::path& path);

} // namespace banger
