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
//   [images]                    # registry pulls (docs/artifacts.md)
//   insecure_registries = ["localhost:5000"]  # plain HTTP, no TLS, for these registries only
//   max_layer_bytes = 68719476736  # a layer's uncompressed tar (decompression bombs stop here)
//   max_layer_entries = 1000000    # entries in one layer
//   max_rootfs_bytes = 68719476736 # the root filesystem a pull may grow to
//
//   [[file_sync]]               # a file or directory of the owner's home, copied into each VM
//   host = "~/.gitconfig"       # under the home ("~/..." or an absolute path in it)
//   guest = "/root/.gitconfig"  # strictly below /root (the work disk)
//   mode = 0o600                # optional (or "0600"): the files' mode (default: each file's own)
//
// Tables come after the top-level keys (TOML's rule). The CLI reads `[[file_sync]]`
// (docs/workspaces.md, "Your host setup in the guest") and `insecure_registries`; bangerd
// checks their shape and applies the caps to the pulls it runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger {

/// One `[[file_sync]]` table: its keys as written (host is not resolved here).
struct file_sync_rule {
  std::string host, guest;
  std::optional<std::uint32_t> mode; ///< permission bits, 0 to 0777
  std::size_t line = 0;              ///< where the table starts, for messages
};

/// `[images]`: registry pulls.
struct images_config {
  std::vector<std::string> insecure_registries; ///< "host[:port]" as references name them
  std::uint64_t max_layer_bytes = 64ull << 30;
  std::uint64_t max_layer_entries = 1'000'000;
  std::uint64_t max_rootfs_bytes = 64ull << 30;
  bool insecure(std::string_view registry) const;
};

struct daemon_config {
  std::string bridge = "br-fc";
  std::string subnet = "172.30.0.0/24";
  bool nat = false;
  bool network = true;
  bool boot_snapshots = true;
  images_config images;
  std::vector<file_sync_rule> file_sync;
};

expected<daemon_config> parse_config(std::string_view text, std::string_view origin);

/// Reads `path`; a missing file is the defaults.
expected<daemon_config> load_config(const std::filesystem::path& path);

} // namespace banger
