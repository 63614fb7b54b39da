// A blocking client of QEMU's machine protocol (QMP) over its unix socket: JSON objects, one per
// line. On connect QEMU sends a greeting {"QMP": {...}}; the client answers qmp_capabilities,
// after which each {"execute": CMD[, "arguments": {...}]} gets exactly one {"return": ...} or
// {"error": {"class", "desc"}}, with asynchronous {"event": ...} lines interleaved (skipped).
//
// Every read waits with poll() until a deadline: a call never hangs, whatever QEMU does. QEMU
// serves one QMP connection at a time (a second one waits in the backlog until the first
// closes), so connections are short-lived: one per driver call. Move-only; one thread at a time.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/process.hpp"

namespace banger::vmm {

class qmp_client {
public:
  using clock = std::chrono::steady_clock;

  /// Connects to `socket`, reads the greeting and negotiates capabilities before `deadline`.
  /// errc::unavailable when nothing listens there (ENOENT, ECONNREFUSED), errc::not_running
  /// when QEMU hung up, errc::operation_failed on a timeout or a protocol error.
  static expected<qmp_client> connect(const std::filesystem::path& socket, clock::time_point deadline);

  /// Runs `command` with `arguments_json` (an object's JSON text; empty: no arguments) and returns
  /// its "return" member as JSON text. An {"error"} answer is errc::operation_failed with QEMU's
  /// class and description; a hang-up is errc::not_running.
  expected<std::string> execute(std::string_view command, clock::time_point deadline,
                                std::string_view arguments_json = {});

private:
  explicit qmp_client(unique_fd fd, std::filesystem::path socket) : fd_(std::move(fd)), socket_(std::move(socket)) {}
  expected<std::string> read_line(clock::time_point deadline);
  expected<void> send_line(const std::string& line);

  unique_fd fd_;
  std::filesystem::path socket_;
  std::string buf_; ///< bytes read past the last returned line
};

} // namespace banger::vmm
