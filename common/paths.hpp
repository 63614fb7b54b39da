// Where banger keeps things. The one place that computes the state, runtime, config and
// cache directories, for dev mode (XDG base dirs) and system mode (/var/lib/banger, ...).
// Pure: the environment is passed in, so tests control it.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace banger {

enum class install_mode { dev, system };

struct dirs {
  install_mode mode = install_mode::dev;
  std::filesystem::path state;   ///< journal, logs, VM disks
  std::filesystem::path runtime; ///< sockets, pid files
  std::filesystem::path config;
  std::filesystem::path cache;

  std::filesystem::path socket() const { return runtime / "bangerd.sock"; }
  std::filesystem::path journal() const { return state / "journal"; }
  std::filesystem::path log_file() const { return state / "bangerd.log"; }
  std::filesystem::path lock_file() const { return state / "bangerd.lock"; }
  std::filesystem::path pid_file() const { return runtime / "bangerd.pid"; }
};

/// Looks up an environment variable; empty optional when unset or empty.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// The process environment, as an env_lookup.
env_lookup process_env();

/// Computes the directories. Dev mode: $XDG_STATE_HOME/banger (else ~/.local/state/banger),
/// $XDG_RUNTIME_DIR/banger (else /tmp/banger-<uid>), $XDG_CONFIG_HOME/banger (else
/// ~/.config/banger), $XDG_CACHE_HOME/banger (else ~/.cache/banger); HOME falls back to the
/// passwd entry. Relative XDG values are ignored, as the XDG spec requires.
expected<dirs> resolve_dirs(install_mode mode, const env_lookup& env, unsigned uid);

/// Creates every directory (mode 0700; the runtime dir must end up owned by `uid` and not be
/// accessible to others, or this fails naming the path).
expected<void> ensure_dirs(const dirs& d, unsigned uid);

} // namespace banger
