// The CLI's connection to bangerd: connects to the unix socket (starting the daemon in dev mode
// when it is not running and the command allows it) and exposes the Daemon capability.
// Single-threaded; owns its KJ event loop.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/paths.hpp"

namespace banger::cli {

/// Why a connect failed: lets callers tell "not running" from "not allowed".
enum class connect_failure { none, not_running, permission_denied, other };

struct connection;

class client {
public:
  /// Connects; with `autostart`, starts bangerd (dev mode) when the socket is absent or refused.
  static expected<std::unique_ptr<client>> connect(const dirs& d, bool autostart);
  ~client();
  connection& conn() { return *conn_; }

  explicit client(std::unique_ptr<connection> c);

private:
  std::unique_ptr<connection> conn_;
};

/// Tries to connect once; `failure` says why it did not.
expected<std::unique_ptr<client>> try_connect(const dirs& d, connect_failure& failure);

/// Starts bangerd detached and waits (up to `timeout`) until it answers a ping. Returns its pid.
/// When it exits early, the error carries what it printed.
expected<int> start_daemon(const dirs& d, std::chrono::milliseconds timeout);

/// Path of a sibling binary of the running executable (e.g. "bangerd"), else the bare name.
std::string sibling_binary(const std::string& name);

/// The pid recorded in the runtime dir's pid file, if any.
std::optional<int> recorded_pid(const dirs& d);

} // namespace banger::cli
