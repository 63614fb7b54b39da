// The CLI's commands, one function each; main.cpp wires them to CLI11. Each returns the
// process exit code (0 ok, 1 failure, 3 "not running" for `daemon status`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/paths.hpp"

namespace banger::cli {

struct output_opts {
  bool json = false;
};

struct events_opts {
  bool follow = false;
  std::uint64_t since = 0;
  std::vector<std::string> streams;
  std::vector<std::string> kinds;
};

struct logs_opts {
  unsigned lines = 50;
  bool follow = false;
  bool raw = false;
};

int cmd_ping(const dirs& d, const output_opts& o);
int cmd_version(const dirs& d, const output_opts& o);
int cmd_status(const dirs& d, const output_opts& o);
int cmd_events(const dirs& d, const output_opts& o, const events_opts& e);
int cmd_daemon_start(const dirs& d, const output_opts& o);
int cmd_daemon_stop(const dirs& d, const output_opts& o);
int cmd_daemon_status(const dirs& d, const output_opts& o);
int cmd_daemon_logs(const dirs& d, const logs_opts& l);

/// Prints an error (`banger: message (op-xxxxxx)` on stderr, or a JSON object on stdout with
/// --json) and returns 1.
int report(const banger::error& e, const output_opts& o);

} // namespace banger::cli
