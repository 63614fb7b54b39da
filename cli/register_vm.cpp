// The VM commands (register.hpp): vm create|start|stop|restart|kill|pause|resume|delete|list|
// show|set|prune|logs|exec|ssh|run, and ps.
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/register.hpp"
#include "cli/vm.hpp"

namespace banger::cli {

namespace {

constexpr const char* vm_footer =
  R"(A VM is a copy-on-write overlay of an image, a work disk at /root, a tap with NAT and an IP.
Stopped VMs keep their disks; `vm delete` removes them. Names are DNS labels (a-z, 0-9, '-').

Examples:
  banger vm create --name web --vcpu 2 --memory 1024   # prints the name: name=$(banger vm create)
  banger ps                                            # running VMs; `banger vm list -a` for all
  banger vm exec web -- uname -a
  banger vm exec web -t -- htop                        # interactive, on a terminal
  banger vm ssh web -- sh -c 'echo $HOSTNAME'
  banger vm logs web -f                                # the serial console
  banger vm stop web && banger vm set web --memory 2048 && banger vm start web
  banger vm pause web && banger vm resume web           # freeze it; `ps` shows it paused
  banger vm delete web --force
  banger vm prune -f                                   # delete every stopped VM
Next: `banger vm run --rm -- CMD` for a throwaway VM.)";

constexpr const char* vm_run_footer =
  R"(Creates and starts a VM, runs the command in it (an interactive login shell when none is
given and stdin is a terminal), then stops the VM; with --rm, deletes it too. The exit code is
the command's (1 when it succeeded but the cleanup failed). Ctrl-C stops (and with --rm
deletes) the VM, then exits 130. `[vm run]` lines go to stderr; stdout is the command's.

With a PATH (a git checkout, or a directory in one), the checkout is shipped into the VM first:
the files git tracks as the working tree has them now (--include-untracked: and untracked files
that are not ignored), at /root/<checkout name> (--guest-path), and the command runs there.
--dry-run lists what would be shipped, without a VM.

Examples:
  banger vm run --rm                                   # a shell in a throwaway VM
  banger vm run --rm -- uname -a
  banger vm run --dry-run .                            # what `vm run . -- ...` would ship
  banger vm run --rm --image dev --memory 2048 -- make -C /root/src test
  echo 'echo hi from $(hostname)' | banger vm run --rm -q -- sh
  banger vm run --name scratch -- touch /root/keep     # kept (stopped) afterwards)";

struct vm_options {
  vm_create_opts vc;
  vm_exec_opts vx;
  vm_run_opts vr;
  std::string vm_name;
  bool vm_force = false, vm_all = false, vm_follow = false;
  std::size_t vm_lines = 0;
  std::uint32_t set_vcpus = 0, set_memory = 0;
  std::vector<std::string> ssh_command;
};

} // namespace

void register_vm_commands(CLI::App& app, parsed_command& p) {
  auto& st = p.keep<vm_options>();
  auto& vc = st.vc;
  auto& vx = st.vx;
  auto& vr = st.vr;
  auto& vm_name = st.vm_name;
  auto& vm_force = st.vm_force;
  auto& vm_all = st.vm_all;
  auto& vm_follow = st.vm_follow;
  auto& vm_lines = st.vm_lines;
  auto& set_vcpus = st.set_vcpus;
  auto& set_memory = st.set_memory;
  auto& ssh_command = st.ssh_command;
  CLI::Validator name_check(
    [](std::string& n) -> std::string {
      auto ok = validate_vm_name(n);
      return ok ? std::string() : ok.err().message;
    },
    "NAME");
  CLI::Validator at_least_one(
    [](std::string& v) -> std::string {
      return v.find_first_not_of("0123456789") == std::string::npos && v.find_first_not_of('0') != std::string::npos
               ? std::string()
               : "must be a whole number of at least 1";
    },
    "N>0");
  auto add_create_options = [&](CLI::App* cmd, vm_create_opts& c) {
    cmd->add_option("--name", c.name, "VM name (default: generated)")->check(name_check);
    cmd->add_option("--image", c.image,
                    "Image name, or a registry reference (REGISTRY/REPO:TAG, pulled on first use; default: "
                    "\"default\")");
    cmd->add_option("--kernel", c.kernel, "Kernel (default: \"default\")");
    cmd->add_option("--vcpu", c.vcpus, "vCPUs (default: 1)")->check(at_least_one);
    cmd->add_option("--memory", c.memory_mib, "Memory in MiB (default: 512)")->check(at_least_one);
    cmd->add_option("--disk-size", c.disk_mib, "Work disk (/root) size in MiB (default: 2048)")->check(at_least_one);
  };
  auto add_exec_options = [&](CLI::App* cmd, vm_exec_opts& e) {
    cmd->add_flag("-t,--tty", e.tty, "Run on a terminal (raw mode; needs a terminal on stdin)");
    // One KEY=VALUE per -e, so `-e K=V -- CMD` leaves CMD alone.
    cmd->add_option("-e,--env", e.env, "KEY=VALUE to set; repeatable")->allow_extra_args(false);
    cmd->add_option("--cwd", e.cwd, "Working directory (default: the VM's workspace, else /root)");
  };

  auto* vm = app.add_subcommand("vm", "Create, run, inspect and remove microVMs");
  vm->footer(vm_footer);
  vm->require_subcommand(1);
  auto* vcreate = vm->add_subcommand("create", "Create a VM and start it (prints its name)");
  add_create_options(vcreate, vc);
  vcreate->add_flag("--no-start", vc.no_start, "Only create it; `banger vm start NAME` later");
  vcreate->add_flag("--json", p.out.json, "Print the VM as JSON");
  vcreate->footer("Examples:\n  banger vm create --name web --memory 1024\n  name=$(banger vm create --image dev)");
  vcreate->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_create(d, p.out, vc); }; });
  for (const char* verb : {"start", "stop", "restart", "kill"}) {
    std::string what = std::string(verb) == "start"     ? "Start a stopped VM"
                       : std::string(verb) == "stop"    ? "Stop a VM cleanly (guest poweroff, then harder)"
                       : std::string(verb) == "restart" ? "Stop a VM (if running), then start it"
                                                        : "Stop a VM at once (SIGKILL; no clean shutdown)";
    auto* cmd = vm->add_subcommand(verb, what);
    cmd->add_option("name", vm_name, "VM name")->required();
    cmd->add_flag("--json", p.out.json, "Print the VM as JSON");
    std::string v = verb;
    cmd->callback([&, v] {
      p.action = [&, v](const dirs& d) {
        if (v == "start")
          return cmd_vm_start(d, p.out, vm_name);
        if (v == "restart")
          return cmd_vm_restart(d, p.out, vm_name);
        return cmd_vm_stop(d, p.out, vm_name, v == "kill");
      };
    });
  }
  // Commands that take a VM's name and answer with the VM: one row each (commands.hpp has the
  // command, the daemon maps it generically).
  struct plain_command {
    const char* verb;
    const char* help;
    actors::vm_command command;
    const char* done; ///< {name}, {secs}
  };
  static const plain_command plain[] = {
    {"pause", "Freeze a running VM (memory, disks and network stay)", actors::vm_cmd::pause{},
     "paused {name} in {secs:.1f}s (`banger vm resume {name}` lets it run)"},
    {"resume", "Let a paused VM run again", actors::vm_cmd::resume{}, "resumed {name} in {secs:.1f}s"},
  };
  for (const auto& row : plain) {
    auto* cmd = vm->add_subcommand(row.verb, row.help);
    cmd->add_option("name", vm_name, "VM name")->required();
    cmd->add_flag("--json", p.out.json, "Print the VM as JSON");
    cmd->callback([&, &row = row] {
      p.action = [&](const dirs& d) {
        return cmd_vm_command(d, p.out, vm_name, row.command, std::string("vm ") + row.verb, row.done);
      };
    });
  }
  auto* vdelete = vm->add_subcommand("delete", "Delete a stopped VM: its disks, tap, NAT rule and IP lease");
  vdelete->alias("rm");
  vdelete->add_option("name", vm_name, "VM name")->required();
  vdelete->add_flag("-f,--force", vm_force, "Stop it first if it is running");
  vdelete->add_flag("--json", p.out.json, "Print JSON");
  vdelete->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_delete(d, p.out, vm_name, vm_force); }; });
  for (const char* cmd_name : {"list", "ps"}) {
    bool top = std::string(cmd_name) == "ps";
    auto* list =
      (top ? &app : vm)
        ->add_subcommand(cmd_name, top ? "List running VMs (`banger vm list`)" : "List running VMs; -a for all");
    if (!top)
      list->alias("ls");
    list->add_flag("-a,--all", vm_all, "Stopped VMs too");
    list->add_flag("--json", p.out.json, "Print a JSON array");
    list->footer(
      "Examples:\n  banger ps\n  banger vm list -a --json | jq -r '.[] | select(.state==\"stopped\") | .name'");
    list->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_list(d, p.out, vm_all); }; });
  }
  auto* vshow = vm->add_subcommand("show", "Show one VM: state, image, resources, last error");
  vshow->add_option("name", vm_name, "VM name")->required();
  vshow->add_flag("--json", p.out.json, "Print JSON");
  vshow->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_show(d, p.out, vm_name); }; });
  auto* vset = vm->add_subcommand("set", "Change a stopped VM's vCPUs or memory");
  vset->add_option("name", vm_name, "VM name")->required();
  vset->add_option("--vcpu", set_vcpus, "vCPUs")->check(at_least_one);
  vset->add_option("--memory", set_memory, "Memory in MiB")->check(at_least_one);
  vset->add_flag("--json", p.out.json, "Print the VM as JSON");
  vset->footer("Example:\n  banger vm stop web && banger vm set web --vcpu 4 --memory 4096 && banger vm start web");
  vset->callback(
    [&] { p.action = [&](const dirs& d) { return cmd_vm_set(d, p.out, vm_name, set_vcpus, set_memory); }; });
  auto* vprune = vm->add_subcommand("prune", "Delete every stopped VM (asks first unless -f)");
  vprune->add_flag("-f,--force", vm_force, "Do not ask");
  vprune->add_flag("--json", p.out.json, "Print JSON");
  vprune->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_prune(d, p.out, vm_force); }; });
  auto* vlogs = vm->add_subcommand("logs", "Print a VM's serial console");
  vlogs->add_option("name", vm_name, "VM name")->required();
  vlogs->add_flag("-f,--follow", vm_follow, "Keep printing until interrupted or the VM is deleted");
  vlogs->add_option("-n,--lines", vm_lines, "Only the last LINES lines (default: all)");
  vlogs->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_logs(d, vm_name, vm_follow, vm_lines); }; });
  auto* vexec = vm->add_subcommand("exec", "Run a command in a running VM (exit code: the command's)");
  vexec->add_option("name", vx.name, "VM name")->required();
  add_exec_options(vexec, vx);
  vexec->add_flag("--auto-prepare", vx.auto_prepare,
                  "When the workspace's checkout moved on, re-ship it first (else: a warning)");
  vexec->add_option("command", vx.argv, "The command and its arguments, after --")->required();
  vexec->footer("Examples:\n  banger vm exec web -- ls -la /root\n  banger vm exec web -t -- bash\n"
                "  tar c src | banger vm exec web --cwd /root -- tar x");
  vexec->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_exec(d, vx); }; });
  auto* vssh = vm->add_subcommand("ssh", "ssh into a running VM with banger's key (exit code: ssh's)");
  vssh->add_option("name", vm_name, "VM name")->required();
  vssh->add_option("command", ssh_command, "A remote command, after --");
  vssh->footer("Examples:\n  banger vm ssh web\n  banger vm ssh web -- sh -c 'exit 42'; echo $?   # 42");
  vssh->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_ssh(d, vm_name, ssh_command); }; });
  auto& ping_count = p.keep<unsigned>();
  auto& ping_interval_ms = p.keep<unsigned>();
  ping_count = 3;
  ping_interval_ms = 200;
  auto* vping = vm->add_subcommand("ping", "Ping a running VM's agent through the daemon (round trip times)");
  vping->add_option("name", vm_name, "VM name")->required();
  vping->add_option("-c,--count", ping_count, "How many pings (default: 3)")->check(CLI::PositiveNumber);
  vping->add_option("-i,--interval", ping_interval_ms, "Milliseconds between pings (default: 200)");
  vping->add_flag("--json", p.out.json, "Print one JSON object");
  vping->callback([&] {
    p.action = [&](const dirs& d) {
      return cmd_vm_ping(d, p.out, vm_name, ping_count, std::chrono::milliseconds(ping_interval_ms));
    };
  });
  auto* vhealth = vm->add_subcommand("health", "Is a VM healthy: running, and its agent answering (exit 1 if not)");
  vhealth->add_option("name", vm_name, "VM name")->required();
  vhealth->add_flag("--json", p.out.json, "Print JSON");
  vhealth->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_health(d, p.out, vm_name); }; });
  auto& ports_no_probe = p.keep<bool>();
  ports_no_probe = false;
  auto* vports = vm->add_subcommand("ports", "A running VM's listening TCP and bound UDP ports, web servers as URLs");
  vports->add_option("name", vm_name, "VM name")->required();
  vports->add_flag("--no-probe", ports_no_probe, "Do not ask TCP ports for HTTP(S)");
  vports->add_flag("--json", p.out.json, "Print a JSON array");
  vports->callback([&] { p.action = [&](const dirs& d) { return cmd_vm_ports(d, p.out, vm_name, !ports_no_probe); }; });
  auto* vws = vm->add_subcommand("workspace", "A VM's workspace: a git checkout shipped into it (docs/workspaces.md)");
  vws->require_subcommand(1);
  auto& ws_opts = p.keep<workspace_opts>();
  auto* wprep = vws->add_subcommand("prepare", "Ship a checkout into a VM (replacing the one at that path)");
  wprep->add_option("name", vm_name, "VM name")->required();
  wprep->add_option("path", ws_opts.path, "A git checkout, or a directory in one")->required();
  wprep->add_option("--guest-path", ws_opts.guest_path, "Where it lands (default: /root/<name>)");
  wprep->add_flag("--include-untracked", ws_opts.include_untracked, "Ship untracked files that are not ignored too");
  wprep->add_flag("--json", p.out.json, "Print the result as JSON");
  wprep->footer("Examples:\n  banger vm create --name dev && banger vm workspace prepare dev ./repo\n"
                "  banger vm workspace prepare dev . --guest-path /root/src");
  wprep->callback([&] { p.action = [&](const dirs& d) { return cmd_workspace_prepare(d, p.out, vm_name, ws_opts); }; });
  auto& export_to = p.keep<std::string>();
  auto& export_commits = p.keep<bool>();
  auto* wexp = vws->add_subcommand("export", "The guest's changes to its workspace, as a patch for `git apply`");
  wexp->add_option("name", vm_name, "VM name")->required();
  wexp->add_option("-o,--output", export_to, "Write it to FILE (whole, or not at all) instead of stdout");
  wexp->add_flag("--commits", export_commits, "The commits made in the guest, as a mailbox for `git am`");
  wexp->footer("Examples:\n  banger vm workspace export dev > fix.patch && git apply fix.patch\n"
               "  banger vm workspace export dev --commits -o guest.mbox && git am guest.mbox");
  wexp->callback(
    [&] { p.action = [&](const dirs& d) { return cmd_workspace_export(d, vm_name, export_to, export_commits); }; });
  auto* wshow = vws->add_subcommand("show", "Show a VM's workspace: where it is, where it came from, what was shipped");
  wshow->add_option("name", vm_name, "VM name")->required();
  wshow->add_flag("--json", p.out.json, "Print it as JSON (null when there is none)");
  wshow->callback([&] { p.action = [&](const dirs& d) { return cmd_workspace_show(d, p.out, vm_name); }; });
  auto* vrun = vm->add_subcommand("run", "Create a VM, run a command in it, stop it (--rm: delete it)");
  vrun->footer(vm_run_footer);
  add_create_options(vrun, vr.create);
  add_exec_options(vrun, vr.exec);
  vrun->add_flag("--rm", vr.rm, "Delete the VM afterwards");
  vrun->add_flag("-q,--quiet", vr.quiet, "No [vm run] progress lines");
  vrun->add_flag("--include-untracked", vr.workspace.include_untracked,
                 "Ship untracked files that are not ignored too");
  vrun->add_option("--guest-path", vr.workspace.guest_path, "Where the checkout lands (default: /root/<name>)");
  vrun->add_flag("--dry-run", vr.dry_run, "List what PATH would ship, and exit (no VM)");
  vrun->add_flag("--json", p.out.json, "With --dry-run: the list as JSON");
  // CLI11 fills positionals in order, also after `--`, so `vm run -- uname -a` puts "uname" in
  // `path`; split_run_arguments puts each argument where the `--` says it belongs.
  auto& run_path = p.keep<std::string>();
  auto& run_args = p.keep<std::vector<std::string>>();
  vrun->add_option("path", run_path, "A git checkout to ship, before -- (optional)");
  vrun->add_option("command", run_args, "The command and its arguments, after -- (default: sh -l)");
  vrun->callback([&] {
    p.action = [&](const dirs& d) {
      if (!run_path.empty())
        run_args.insert(run_args.begin(), run_path);
      if (auto ok = split_run_arguments(vr, run_args, p.after_dashdash); !ok) {
        report(ok.err(), p.out);
        return 2;
      }
      std::error_code ec;
      if (p.after_dashdash == 0 && !vr.workspace.path.empty() &&
          !std::filesystem::is_directory(vr.workspace.path, ec)) {
        report(make_error(errc::bad_request, fmt::format("{} is not a directory: before `--` comes a checkout to ship; "
                                                         "a command goes after it (banger vm run -- {})",
                                                         vr.workspace.path, shell_join(run_args))),
               p.out);
        return 2;
      }
      if (vr.dry_run)
        return cmd_workspace_dry_run(vr.workspace, p.out);
      return cmd_vm_run(d, vr);
    };
  });
}

} // namespace banger::cli
