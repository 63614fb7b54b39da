// banger: the command-line client. Wires CLI11 to the commands in commands.cpp.
// Exit codes: 0 ok, 1 failure, 2 usage error, 3 `daemon status` when not running.
#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "cli/artifacts.hpp"
#include "cli/commands.hpp"
#include "cli/vm.hpp"
#include "common/paths.hpp"

using namespace banger;
using namespace banger::cli;

namespace {

constexpr const char* top_footer = R"(Examples:
  banger status                 # starts the daemon if needed and shows what it holds
  banger events --follow        # watch every state change as it happens
  banger daemon logs -f         # the daemon's own log

Every command that lists or shows takes --json. Errors print as `banger: <message> (op-xxxxxx)`;
quote the op id when reporting a problem: it is on every log line and journal event of that request.)";

constexpr const char* daemon_footer =
  R"(bangerd is the per-user daemon that owns banger's state: the event journal, and (soon) VMs,
images and kernels. Other commands start it on demand; these commands manage it explicitly.

Examples:
  banger daemon start           # start it detached; returns once it answers
  banger daemon status          # running? pid, uptime, journal position
  banger daemon logs -n 100 -f  # follow its log
  banger daemon stop            # stop it cleanly (VMs, once they exist, keep running))";

constexpr const char* events_footer =
  R"(Every state change banger makes is an event in its journal, numbered by a global sequence.
Without --follow this prints the events there are and exits; with it, it keeps printing new
ones, and when the daemon stops it waits for it to come back and resumes right after the last
event it printed (Ctrl-C to stop). Resume a later run with --since <last seq you saw>: nothing
is skipped or repeated.

Examples:
  banger events                          # everything so far
  banger events --follow --json          # JSON lines, for automation
  banger events --since 120 --type daemon_started
Next: `banger-replay history` reads the same journal offline.)";

constexpr const char* kernel_footer =
  R"(A kernel is a vmlinux (or bzImage) plus a small initramfs with the virtio and ext4 modules,
stored by content with a manifest of sha256s. Debian's cloud kernel is the best guest kernel.

Examples:
  banger kernel import cloud --apt linux-image-cloud-amd64
  banger kernel import mine --deb ./linux-image-6.1.0-28-cloud-amd64_6.1.119-1_amd64.deb
  banger kernel list
  banger kernel export-bundle cloud /srv/kernels/cloud.tar.zst   # and catalog.json beside it
  banger kernel pull cloud --catalog http://kernels.example/catalog.json
Next: `banger image build NAME --busybox`.)";

constexpr const char* image_footer =
  R"(An image is an immutable root filesystem (rootfs.ext4) plus the seed of each VM's work disk
(work-seed.ext4, the image's /root). Rebuilding a name makes a new version; VMs keep theirs.
banger-init and banger-agent are injected into every image.

Examples:
  banger image build tiny --busybox
  banger image build dev --debootstrap --packages build-essential,python3
  banger image import mine --tar ./rootfs.tar.zst
  banger image list)";

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

Examples:
  banger vm run --rm                                   # a shell in a throwaway VM
  banger vm run --rm -- uname -a
  banger vm run --rm --image dev --memory 2048 -- make -C /root/src test
  echo 'echo hi from $(hostname)' | banger vm run --rm -q -- sh
  banger vm run --name scratch -- touch /root/keep     # kept (stopped) afterwards)";

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"banger: throwaway and persistent microVMs for developers"};
  app.footer(top_footer);
  app.require_subcommand(1);
  bool system_mode = false;
  app.add_flag("--system", system_mode, "Talk to the system daemon (/run/banger) instead of your own");

  output_opts out;
  events_opts ev;
  logs_opts lg;
  int rc = 0;
  std::function<int(const dirs&)> action;

  auto* ping = app.add_subcommand("ping", "Check that the daemon answers, and how fast");
  ping->add_flag("--json", out.json, "Print JSON");
  ping->footer("Example:\n  banger ping");
  ping->callback([&] { action = [&](const dirs& d) { return cmd_ping(d, out); }; });

  auto* version = app.add_subcommand("version", "Show the client's and the daemon's versions");
  version->add_flag("--json", out.json, "Print JSON");
  version->callback([&] { action = [&](const dirs& d) { return cmd_version(d, out); }; });

  auto* status = app.add_subcommand("status", "Show the daemon's state: uptime, journal position, entities");
  status->add_flag("--json", out.json, "Print JSON");
  status->footer("Example:\n  banger status --json | jq .journal_seq");
  status->callback([&] { action = [&](const dirs& d) { return cmd_status(d, out); }; });

  auto* events = app.add_subcommand("events", "Print the event journal; --follow to stream it live");
  events->footer(events_footer);
  events->add_flag("--json", out.json, "JSON lines, one event per line (schema: docs/events.md)");
  events->add_flag("-f,--follow", ev.follow, "Keep printing new events until interrupted");
  events->add_option("--since", ev.since, "Only events with a sequence number above this")
    ->check(CLI::NonNegativeNumber);
  events->add_option("--stream", ev.streams, "Only this stream (e.g. daemon); repeatable");
  events->add_option("--type", ev.kinds, "Only this event kind (e.g. daemon_started); repeatable");
  std::vector<std::string> event_vms;
  events->add_option("--vm", event_vms, "Only this VM's events (its stream vm/NAME); repeatable")
    ->check([](const std::string& name) {
      auto ok = validate_vm_name(name);
      return ok ? std::string{} : ok.err().message;
    });
  events->callback([&] {
    for (const auto& name : event_vms)
      ev.streams.push_back("vm/" + name);
    action = [&](const dirs& d) { return cmd_events(d, out, ev); };
  });

  auto* daemon = app.add_subcommand("daemon", "Start, stop and inspect bangerd");
  daemon->footer(daemon_footer);
  daemon->require_subcommand(1);
  auto* dstart = daemon->add_subcommand("start", "Start bangerd detached; returns once it answers");
  dstart->add_flag("--json", out.json, "Print JSON");
  dstart->callback([&] { action = [&](const dirs& d) { return cmd_daemon_start(d, out); }; });
  auto* dstop = daemon->add_subcommand("stop", "Stop bangerd and wait until it has exited");
  dstop->add_flag("--json", out.json, "Print JSON");
  dstop->callback([&] { action = [&](const dirs& d) { return cmd_daemon_stop(d, out); }; });
  auto* dstatus = daemon->add_subcommand("status", "Is bangerd running? (exit 3 when not)");
  dstatus->add_flag("--json", out.json, "Print JSON");
  dstatus->callback([&] { action = [&](const dirs& d) { return cmd_daemon_status(d, out); }; });
  auto* dlogs = daemon->add_subcommand("logs", "Print bangerd's log");
  dlogs->add_option("-n,--lines", lg.lines, "How many of the last lines to print")->capture_default_str();
  dlogs->add_flag("-f,--follow", lg.follow, "Keep printing new lines");
  dlogs->add_flag("--raw", lg.raw, "Print the JSON lines as stored");
  dlogs->callback([&] { action = [&](const dirs& d) { return cmd_daemon_logs(d, lg); }; });

  artifact_opts art;
  std::string art_name, export_file;
  for (bool kernel : {true, false}) {
    const char* kind = kernel ? "kernel" : "image";
    auto* grp = app.add_subcommand(kind, kernel ? "Import, list, show and remove guest kernels"
                                                : "Build, import, list, show and remove guest images");
    grp->require_subcommand(1);
    grp->footer(kernel ? kernel_footer : image_footer);
    auto set_kind = [&art, kernel] { art.kernel = kernel; };
    if (kernel) {
      auto* imp = grp->add_subcommand("import", "Import a kernel from a Debian package or a vmlinux/bzImage");
      imp->add_option("name", art.name, "Kernel name")->required();
      imp->add_option("--deb", art.deb, "A linux-image .deb file");
      imp->add_option("--apt", art.apt, "A package to `apt-get download` (e.g. linux-image-cloud-amd64)");
      imp->add_option("--vmlinux", art.vmlinux, "A vmlinux (PVH ELF) or bzImage file");
      imp->add_option("--initrd", art.initrd, "With --vmlinux: an initramfs to use as is");
      imp->add_option("--modules", art.modules, "With --vmlinux: a lib/modules/VERSION dir to build one from");
      imp->add_flag("--json", out.json, "Print JSON");
      imp->callback([&, set_kind] {
        set_kind();
        action = [&](const dirs& d) { return cmd_artifact_build(d, out, art); };
      });
      auto* pull = grp->add_subcommand("pull", "Pull a kernel bundle from a catalog (sha256 and size verified)");
      pull->add_option("name", art.name, "Kernel name (as listed in the catalog)")->required();
      pull->add_option("--catalog", art.catalog, "Catalog URL (default: $BANGER_CATALOG)");
      pull->add_flag("--json", out.json, "Print JSON");
      pull->callback([&, set_kind] {
        set_kind();
        if (art.catalog.empty())
          art.catalog = default_catalog();
        action = [&](const dirs& d) {
          if (art.catalog.empty())
            return report(make_error(errc::bad_request, "no catalog: pass --catalog URL or set BANGER_CATALOG"), out);
          return cmd_artifact_build(d, out, art);
        };
      });
      auto* exp = grp->add_subcommand("export-bundle", "Write a kernel as a catalog bundle (tar.zst) + catalog entry");
      exp->add_option("name", art_name, "Kernel name")->required();
      exp->add_option("file", export_file, "Bundle file to write (e.g. ./cloud.tar.zst)")->required();
      exp->add_flag("--json", out.json, "Print JSON");
      exp->callback([&] { action = [&](const dirs& d) { return cmd_kernel_export(d, out, art_name, export_file); }; });
    } else {
      auto* build = grp->add_subcommand("build", "Build an image: --busybox (seconds) or --debootstrap (a minute)");
      build->add_option("name", art.name, "Image name")->required();
      build->add_flag("--busybox", art.busybox, "busybox-static: tiny, for tests and quick starts");
      build->add_flag("--debootstrap", art.debootstrap, "Debian minbase with openssh-server, curl, git, iproute2, ...");
      build->add_option("--suite", art.suite, "Debian suite for --debootstrap")->capture_default_str();
      build->add_option("--packages", art.packages, "Extra packages for --debootstrap (a,b,c)")->delimiter(',');
      build->add_flag("--json", out.json, "Print JSON");
      build->callback([&, set_kind] {
        set_kind();
        action = [&](const dirs& d) { return cmd_artifact_build(d, out, art); };
      });
      auto* imp = grp->add_subcommand("import", "Import an image from a directory tree or a tar file");
      imp->add_option("name", art.name, "Image name")->required();
      imp->add_option("--dir", art.dir, "A root filesystem tree");
      imp->add_option("--tar", art.tar, "A tar file (plain, gzip, xz or zstd)");
      imp->add_flag("--json", out.json, "Print JSON");
      imp->callback([&, set_kind] {
        set_kind();
        action = [&](const dirs& d) { return cmd_artifact_build(d, out, art); };
      });
    }
    auto* list = grp->add_subcommand("list", std::string("List ") + kind + "s");
    list->alias("ls");
    list->add_flag("--json", out.json, "Print JSON");
    list->callback([&, kernel] { action = [&, kernel](const dirs& d) { return cmd_artifact_list(d, out, kernel); }; });
    auto* show = grp->add_subcommand("show", std::string("Show one ") + kind + ": versions, files, sha256s");
    show->add_option("name", art_name, "Name")->required();
    show->add_flag("--json", out.json, "Print JSON");
    show->callback(
      [&, kernel] { action = [&, kernel](const dirs& d) { return cmd_artifact_show(d, out, kernel, art_name); }; });
    auto* rm = grp->add_subcommand("rm", std::string("Remove a ") + kind + " and all its versions");
    rm->add_option("name", art_name, "Name")->required();
    rm->add_flag("--json", out.json, "Print JSON");
    rm->callback(
      [&, kernel] { action = [&, kernel](const dirs& d) { return cmd_artifact_remove(d, out, kernel, art_name); }; });
  }
  vm_create_opts vc;
  vm_exec_opts vx;
  vm_run_opts vr;
  std::string vm_name;
  bool vm_force = false, vm_all = false, vm_follow = false;
  std::size_t vm_lines = 0;
  std::uint32_t set_vcpus = 0, set_memory = 0;
  std::vector<std::string> ssh_command;
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
    cmd->add_option("--image", c.image, "Image (default: \"default\")");
    cmd->add_option("--kernel", c.kernel, "Kernel (default: \"default\")");
    cmd->add_option("--vcpu", c.vcpus, "vCPUs (default: 1)")->check(at_least_one);
    cmd->add_option("--memory", c.memory_mib, "Memory in MiB (default: 512)")->check(at_least_one);
    cmd->add_option("--disk-size", c.disk_mib, "Work disk (/root) size in MiB (default: 2048)")->check(at_least_one);
  };
  auto add_exec_options = [&](CLI::App* cmd, vm_exec_opts& e) {
    cmd->add_flag("-t,--tty", e.tty, "Run on a terminal (raw mode; needs a terminal on stdin)");
    cmd->add_option("-e,--env", e.env, "KEY=VALUE to set; repeatable");
    cmd->add_option("--cwd", e.cwd, "Working directory (default: /root)");
  };

  auto* vm = app.add_subcommand("vm", "Create, run, inspect and remove microVMs");
  vm->footer(vm_footer);
  vm->require_subcommand(1);
  auto* vcreate = vm->add_subcommand("create", "Create a VM and start it (prints its name)");
  add_create_options(vcreate, vc);
  vcreate->add_flag("--no-start", vc.no_start, "Only create it; `banger vm start NAME` later");
  vcreate->add_flag("--json", out.json, "Print the VM as JSON");
  vcreate->footer("Examples:\n  banger vm create --name web --memory 1024\n  name=$(banger vm create --image dev)");
  vcreate->callback([&] { action = [&](const dirs& d) { return cmd_vm_create(d, out, vc); }; });
  for (const char* verb : {"start", "stop", "restart", "kill", "pause", "resume"}) {
    std::string what = std::string(verb) == "start"     ? "Start a stopped VM"
                       : std::string(verb) == "stop"    ? "Stop a VM cleanly (guest poweroff, then harder)"
                       : std::string(verb) == "restart" ? "Stop a VM (if running), then start it"
                       : std::string(verb) == "pause"   ? "Freeze a running VM (memory, disks and network stay)"
                       : std::string(verb) == "resume"  ? "Let a paused VM run again"
                                                        : "Stop a VM at once (SIGKILL; no clean shutdown)";
    auto* cmd = vm->add_subcommand(verb, what);
    cmd->add_option("name", vm_name, "VM name")->required();
    cmd->add_flag("--json", out.json, "Print the VM as JSON");
    std::string v = verb;
    cmd->callback([&, v] {
      action = [&, v](const dirs& d) {
        if (v == "start")
          return cmd_vm_start(d, out, vm_name);
        if (v == "restart")
          return cmd_vm_restart(d, out, vm_name);
        if (v == "pause" || v == "resume")
          return cmd_vm_pause(d, out, vm_name, v == "pause");
        return cmd_vm_stop(d, out, vm_name, v == "kill");
      };
    });
  }
  auto* vdelete = vm->add_subcommand("delete", "Delete a stopped VM: its disks, tap, NAT rule and IP lease");
  vdelete->alias("rm");
  vdelete->add_option("name", vm_name, "VM name")->required();
  vdelete->add_flag("-f,--force", vm_force, "Stop it first if it is running");
  vdelete->add_flag("--json", out.json, "Print JSON");
  vdelete->callback([&] { action = [&](const dirs& d) { return cmd_vm_delete(d, out, vm_name, vm_force); }; });
  for (const char* cmd_name : {"list", "ps"}) {
    bool top = std::string(cmd_name) == "ps";
    auto* list =
      (top ? &app : vm)
        ->add_subcommand(cmd_name, top ? "List running VMs (`banger vm list`)" : "List running VMs; -a for all");
    if (!top)
      list->alias("ls");
    list->add_flag("-a,--all", vm_all, "Stopped VMs too");
    list->add_flag("--json", out.json, "Print a JSON array");
    list->footer(
      "Examples:\n  banger ps\n  banger vm list -a --json | jq -r '.[] | select(.state==\"stopped\") | .name'");
    list->callback([&] { action = [&](const dirs& d) { return cmd_vm_list(d, out, vm_all); }; });
  }
  auto* vshow = vm->add_subcommand("show", "Show one VM: state, image, resources, last error");
  vshow->add_option("name", vm_name, "VM name")->required();
  vshow->add_flag("--json", out.json, "Print JSON");
  vshow->callback([&] { action = [&](const dirs& d) { return cmd_vm_show(d, out, vm_name); }; });
  auto* vset = vm->add_subcommand("set", "Change a stopped VM's vCPUs or memory");
  vset->add_option("name", vm_name, "VM name")->required();
  vset->add_option("--vcpu", set_vcpus, "vCPUs")->check(at_least_one);
  vset->add_option("--memory", set_memory, "Memory in MiB")->check(at_least_one);
  vset->add_flag("--json", out.json, "Print the VM as JSON");
  vset->footer("Example:\n  banger vm stop web && banger vm set web --vcpu 4 --memory 4096 && banger vm start web");
  vset->callback([&] { action = [&](const dirs& d) { return cmd_vm_set(d, out, vm_name, set_vcpus, set_memory); }; });
  auto* vprune = vm->add_subcommand("prune", "Delete every stopped VM (asks first unless -f)");
  vprune->add_flag("-f,--force", vm_force, "Do not ask");
  vprune->add_flag("--json", out.json, "Print JSON");
  vprune->callback([&] { action = [&](const dirs& d) { return cmd_vm_prune(d, out, vm_force); }; });
  auto* vlogs = vm->add_subcommand("logs", "Print a VM's serial console");
  vlogs->add_option("name", vm_name, "VM name")->required();
  vlogs->add_flag("-f,--follow", vm_follow, "Keep printing until interrupted or the VM is deleted");
  vlogs->add_option("-n,--lines", vm_lines, "Only the last LINES lines (default: all)");
  vlogs->callback([&] { action = [&](const dirs& d) { return cmd_vm_logs(d, vm_name, vm_follow, vm_lines); }; });
  auto* vexec = vm->add_subcommand("exec", "Run a command in a running VM (exit code: the command's)");
  vexec->add_option("name", vx.name, "VM name")->required();
  add_exec_options(vexec, vx);
  vexec->add_option("command", vx.argv, "The command and its arguments, after --")->required();
  vexec->footer("Examples:\n  banger vm exec web -- ls -la /root\n  banger vm exec web -t -- bash\n"
                "  tar c src | banger vm exec web --cwd /root -- tar x");
  vexec->callback([&] { action = [&](const dirs& d) { return cmd_vm_exec(d, vx); }; });
  auto* vssh = vm->add_subcommand("ssh", "ssh into a running VM with banger's key (exit code: ssh's)");
  vssh->add_option("name", vm_name, "VM name")->required();
  vssh->add_option("command", ssh_command, "A remote command, after --");
  vssh->footer("Examples:\n  banger vm ssh web\n  banger vm ssh web -- sh -c 'exit 42'; echo $?   # 42");
  vssh->callback([&] { action = [&](const dirs& d) { return cmd_vm_ssh(d, vm_name, ssh_command); }; });
  auto* vrun = vm->add_subcommand("run", "Create a VM, run a command in it, stop it (--rm: delete it)");
  vrun->footer(vm_run_footer);
  add_create_options(vrun, vr.create);
  add_exec_options(vrun, vr.exec);
  vrun->add_flag("--rm", vr.rm, "Delete the VM afterwards");
  vrun->add_flag("-q,--quiet", vr.quiet, "No [vm run] progress lines");
  vrun->add_option("command", vr.exec.argv, "The command and its arguments, after -- (default: sh -l)");
  vrun->callback([&] { action = [&](const dirs& d) { return cmd_vm_run(d, vr); }; });

  auto* setup = app.add_subcommand("setup", "Import the default kernel and build the default image (once)");
  setup->add_flag("--json", out.json, "Print JSON");
  setup->footer("Imports Debian's cloud kernel as kernel \"default\" and builds image \"default\" with debootstrap\n"
                "(bookworm, openssh-server, curl, git, iproute2); later runs see them and return at once.\n\n"
                "Example:\n  banger setup");
  setup->callback([&] { action = [&](const dirs& d) { return cmd_setup(d, out); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  auto d = resolve_dirs(system_mode ? install_mode::system : install_mode::dev, process_env(), ::geteuid());
  if (!d)
    return report(d.err(), out);
  rc = action ? action(*d) : 2;
  return rc;
}
