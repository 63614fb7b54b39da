// banger: the command-line client. Wires CLI11 to the commands in commands.cpp.
// Exit codes: 0 ok, 1 failure, 2 usage error, 3 `daemon status` when not running.
#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "cli/artifacts.hpp"
#include "cli/commands.hpp"
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
ones. Resume after a disconnect with --since <last seq you saw>: nothing is skipped or repeated.

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
  events->callback([&] { action = [&](const dirs& d) { return cmd_events(d, out, ev); }; });

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
