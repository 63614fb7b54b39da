// Running a program to completion: stdout and stderr captured, extra environment, a working
// directory and a timeout (the whole process group is killed when it passes). Blocking: call
// from worker threads, never from an event-based actor. Also starting one in the background
// with its output going to files (the caller reaps it).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger {

struct process_result {
  int exit_code = -1; ///< -1 when killed by a signal, the timeout, or exec failed to start
  bool timed_out = false;
  std::string out;
  std::string err;
};

struct process_options {
  std::map<std::string, std::string> env; ///< added to the environment; a value "" unsets
  std::filesystem::path cwd;              ///< empty: inherit
  std::filesystem::path stdin_file;       ///< run_process: stdin from this file (empty: /dev/null)
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
  bool merge_stderr = false; ///< stderr goes to `out` too, interleaved as written (err stays empty)
  /// Called with each complete line of `out` as it arrives (progress from chatty tools).
  std::function<void(std::string_view line)> on_line;
};

/// Runs argv[0] (looked up in PATH) with stdin from opts.stdin_file, or /dev/null.
process_result run_process(const std::vector<std::string>& argv, const process_options& opts = {});

/// Starts argv[0] (looked up in PATH) in the background, in the caller's process group, with
/// stdin from opts.stdin_file (or /dev/null) and stdout/stderr appended to `out_file`/`err_file` (created 0644).
/// opts.timeout does not apply. Returns the pid for the caller to reap, or -1 when fork failed.
int spawn_process(const std::vector<std::string>& argv, const process_options& opts,
                  const std::filesystem::path& out_file, const std::filesystem::path& err_file);

/// `name` in PATH, then /usr/local/sbin, /usr/sbin, /sbin, /usr/bin and /bin (system tools
/// such as mkfs.ext4 and debootstrap live in sbin, which a user's PATH often lacks).
std::optional<std::filesystem::path> find_program(std::string_view name);

/// "cmd arg1 arg2" for messages; arguments with spaces are single-quoted.
std::string describe_command(const std::vector<std::string>& argv);

} // namespace banger
