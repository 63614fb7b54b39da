// `banger vm ...` (and `banger ps`): the commands, their options, and the pure pieces they are
// made of (name validation, ages, the list table, JSON, shell quoting, the ssh command line),
// which carry the unit tests. The commands run on the CLI's one thread; vm.cpp holds the
// request/response commands, vm_exec.cpp the interactive ones (exec, run, ssh).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/vm/vm.hpp"
#include "cli/commands.hpp"
#include "cli/workspace.hpp"

namespace banger::cli {

/// A VM as the daemon describes it (rpc::VmInfo), as a plain value.
struct vm_info {
  std::string name, id, state, image, image_version, kernel, kernel_version;
  std::uint32_t vcpus = 0, memory_mib = 0, disk_mib = 0;
  std::string ip;
  std::int64_t created_ns = 0, state_since_ns = 0;
  std::string last_error;
  std::int64_t pid = 0;
  std::string console_log;
  std::vector<std::string> resources;
  struct workspace_info {
    std::string host_path, guest_path, head, branch, digest;
    std::uint64_t files = 0, bytes = 0;
    std::int64_t prepared_ns = 0;
    bool pending = false;
    bool include_untracked = false;
  } workspace; ///< guest_path "" when the VM has none
};

/// What `vm ssh` needs from the daemon (rpc::SshTarget).
struct ssh_target {
  std::string ip, user, identity_file, known_hosts_file, host_key_alias;
  std::string workspace; ///< where the session starts ("": the login directory)
};

struct vm_create_opts {
  std::string name;  ///< empty: the daemon picks one
  std::string image; ///< empty: "default"
  std::string kernel;
  std::uint32_t vcpus = 0; ///< 0: the daemon's default
  std::uint32_t memory_mib = 0;
  std::uint32_t disk_mib = 0;
  bool no_start = false;
};

struct vm_exec_opts {
  std::string name;
  bool tty = false;
  std::vector<std::string> env; ///< "KEY=VALUE"
  std::string cwd;
  std::vector<std::string> argv;
  bool auto_prepare = false; ///< exec: re-ship the workspace first when the checkout moved on
};

struct vm_run_opts {
  vm_create_opts create;
  vm_exec_opts exec;        ///< exec.name is unused: the VM is the one created
  workspace_opts workspace; ///< workspace.path "" when no checkout is shipped
  bool dry_run = false;     ///< list what the workspace would ship; no VM
  bool rm = false;
  bool quiet = false;
};

/// `vm run [PATH] [-- COMMAND...]`: CLI11 collects every positional argument into `positionals`,
/// of which the last `after_dashdash` came after `--`. Before `--` there is at most one, the
/// workspace path; after it, the command.
expected<void> split_run_arguments(vm_run_opts& r, std::vector<std::string> positionals, std::size_t after_dashdash);

// ---- pure parts ----

/// VM names and shapes are checked by the same functions the daemon uses (actors/vm/vm.hpp).
using actors::validate_vm_name;
using actors::validate_vm_shape;

/// "KEY=VALUE" with a non-empty key of [A-Za-z0-9_] not starting with a digit.
expected<void> validate_env(std::string_view kv);

/// How long ago `since_ns` was, in one unit: "5s", "3m", "2h", "4d". "-" when since_ns is 0.
std::string format_age(std::int64_t since_ns, std::int64_t now_ns);

/// One argument for a POSIX shell: bare when it has only safe characters, else in single
/// quotes with ' written as '\''.
std::string shell_quote(std::string_view arg);
/// The arguments quoted and joined with spaces: a command line `sh -c` runs as `argv`.
std::string shell_join(const std::vector<std::string>& argv);

/// The ssh command line for `vm ssh`: host key checked against banger's known_hosts under the
/// VM's alias, banger's identity only, BatchMode when there is no terminal; the remote command
/// shell-quoted after `--`. With a workspace, the command (or, without one, a login shell on a
/// terminal) starts in it.
std::vector<std::string> ssh_argv(const ssh_target& t, bool stdin_is_tty, const std::vector<std::string>& command);

/// The exit code for a process status: the code, or 128+signal.
int exit_code(std::optional<int> exited, std::optional<int> signaled);

/// The last `n` lines of `text` (all of it when n is 0 or there are fewer).
std::string last_lines(std::string_view text, std::size_t n);

/// One VM as a JSON object (snake_case keys, as in `vm show --json`).
std::string vm_json(const vm_info& v);
/// VMs as a JSON array of vm_json objects.
std::string vm_list_json(const std::vector<vm_info>& vms);
/// The `vm list` table: NAME STATE IMAGE IP VCPU MEM AGE, columns sized to fit. `colour`
/// paints the state.
std::string vm_table(const std::vector<vm_info>& vms, std::int64_t now_ns, bool colour);
/// The `vm show` text: "key: value" lines.
std::string vm_show_text(const vm_info& v, std::int64_t now_ns);

// ---- commands (exit codes: 0 ok, 1 failure; exec, ssh and run return the command's) ----

int cmd_vm_create(const dirs& d, const output_opts& o, const vm_create_opts& c);
int cmd_vm_start(const dirs& d, const output_opts& o, const std::string& name);
/// `vm stop`, and with `kill` `vm kill` (SIGKILL, no clean shutdown).
int cmd_vm_stop(const dirs& d, const output_opts& o, const std::string& name, bool kill);
int cmd_vm_restart(const dirs& d, const output_opts& o, const std::string& name);
/// Any command whose answer is the VM (pause, resume, ...): its stages under `label`, then the VM
/// as JSON or `done` on stdout, with {name} and {secs} (the time it took) filled in.
int cmd_vm_command(const dirs& d, const output_opts& o, const std::string& name, const actors::vm_command& cmd,
                   const std::string& label, const std::string& done);
int cmd_vm_delete(const dirs& d, const output_opts& o, const std::string& name, bool force);
/// Without `all`, only VMs that are not stopped (like `docker ps`).
int cmd_vm_list(const dirs& d, const output_opts& o, bool all);
int cmd_vm_show(const dirs& d, const output_opts& o, const std::string& name);
int cmd_vm_set(const dirs& d, const output_opts& o, const std::string& name, std::uint32_t vcpus,
               std::uint32_t memory_mib);
int cmd_vm_prune(const dirs& d, const output_opts& o, bool force);
/// Prints the console log's last `lines` (0: all); `follow` keeps printing until the VM is deleted.
int cmd_vm_logs(const dirs& d, const std::string& name, bool follow, std::size_t lines);
int cmd_vm_exec(const dirs& d, const vm_exec_opts& e);
/// Runs `argv` in VM `vm` at `cwd` for the user (workspace export): no stdin, its stdout to
/// `out_fd`, its stderr to ours; signals we get go to it. Its exit code.
expected<int> exec_captured(client& c, const std::string& vm, const std::vector<std::string>& argv,
                            const std::string& cwd, int out_fd);
/// Replaces this process with ssh (execvp) on success; returns only on failure.
int cmd_vm_ssh(const dirs& d, const std::string& name, const std::vector<std::string>& command);
int cmd_vm_run(const dirs& d, const vm_run_opts& r);
/// `count` pings of the VM's agent through the daemon, `interval` apart: each round trip, then
/// ping_summary's line (or one JSON object). Fails on the first ping that does not answer.
int cmd_vm_ping(const dirs& d, const output_opts& o, const std::string& name, unsigned count,
                std::chrono::milliseconds interval);
/// Healthy: the VM is running and its agent answers a ping (vmPing's 5 s bound); exit 0, else 1
/// with the reason.
int cmd_vm_health(const dirs& d, const output_opts& o, const std::string& name);

/// "N replies: min A / median B / max C ms" of round trips in microseconds.
std::string ping_summary(std::vector<std::uint64_t> rtt_us);

/// One socket as the guest's agent lists it (rpc Agent.Port).
struct guest_port {
  std::string protocol; ///< "tcp", "tcp6", "udp", "udp6"
  std::string address;
  std::uint16_t port = 0;
  std::string process; ///< "pid/comm", guest text; may be empty
};

/// One row of `vm ports`: the sockets of one protocol, port and process, IPv4 and IPv6 merged.
struct port_row {
  std::string protocol; ///< "tcp" or "udp"
  std::uint16_t port = 0;
  std::vector<std::string> addresses; ///< as listed, IPv4 first
  std::string process;
  bool from_host = false; ///< bound to an address other than loopback: the host can reach it
  std::string url;        ///< "http://IP:PORT/" or "https://..." when a probe answered
};

/// Merges `ports` into rows (tcp6 into tcp, udp6 into udp; one row per protocol, port and
/// process), sorted by protocol, then port.
std::vector<port_row> merge_ports(const std::vector<guest_port>& ports);
/// PROTO PORT ADDRESS PROCESS URL, columns sized to fit; guest text is quoted when it is not
/// plain printable ASCII.
std::string ports_table(const std::vector<port_row>& rows);
std::string ports_json(const std::vector<port_row>& rows);

/// The VM's listening TCP and bound UDP sockets (vmPorts); unless `probe` is off, each TCP port
/// the host can reach is asked for HTTP, then HTTPS, and shown as a URL when it answers.
int cmd_vm_ports(const dirs& d, const output_opts& o, const std::string& name, bool probe);

} // namespace banger::cli
