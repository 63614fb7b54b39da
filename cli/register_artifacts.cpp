// The kernel and image commands (register.hpp): kernel import|pull|export-bundle|list|show|rm,
// image build|pull|import|list|show|rm|cache prune, and setup (the default kernel and image).
#include <CLI/CLI.hpp>

#include "cli/artifacts.hpp"
#include "cli/register.hpp"

namespace banger::cli {

namespace {

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
  banger image pull registry.example:5000/team/python:3.12      # as image "python-3.12"
  banger vm run --image registry.example:5000/team/python:3.12 -- python3 -V   # pulls on first use
  banger image list
  banger image cache prune --dry-run)";

struct artifact_options {
  artifact_opts art;
  std::string art_name, export_file;
  bool dry_run = false;
};

} // namespace

void register_artifact_commands(CLI::App& app, parsed_command& p) {
  auto& st = p.keep<artifact_options>();
  auto& art = st.art;
  auto& art_name = st.art_name;
  auto& export_file = st.export_file;
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
      imp->add_flag("--json", p.out.json, "Print JSON");
      imp->callback([&, set_kind] {
        set_kind();
        p.action = [&](const dirs& d) { return cmd_artifact_build(d, p.out, art); };
      });
      auto* pull = grp->add_subcommand("pull", "Pull a kernel bundle from a catalog (sha256 and size verified)");
      pull->add_option("name", art.name, "Kernel name (as listed in the catalog)")->required();
      pull->add_option("--catalog", art.catalog, "Catalog URL (default: $BANGER_CATALOG)");
      pull->add_flag("--json", p.out.json, "Print JSON");
      pull->callback([&, set_kind] {
        set_kind();
        if (art.catalog.empty())
          art.catalog = default_catalog();
        p.action = [&](const dirs& d) {
          if (art.catalog.empty())
            return report(make_error(errc::bad_request, "no catalog: pass --catalog URL or set BANGER_CATALOG"), p.out);
          return cmd_artifact_build(d, p.out, art);
        };
      });
      auto* exp = grp->add_subcommand("export-bundle", "Write a kernel as a catalog bundle (tar.zst) + catalog entry");
      exp->add_option("name", art_name, "Kernel name")->required();
      exp->add_option("file", export_file, "Bundle file to write (e.g. ./cloud.tar.zst)")->required();
      exp->add_flag("--json", p.out.json, "Print JSON");
      exp->callback(
        [&] { p.action = [&](const dirs& d) { return cmd_kernel_export(d, p.out, art_name, export_file); }; });
    } else {
      auto* build = grp->add_subcommand("build", "Build an image: --busybox (seconds) or --debootstrap (a minute)");
      build->add_option("name", art.name, "Image name")->required();
      build->add_flag("--busybox", art.busybox, "busybox-static: tiny, for tests and quick starts");
      build->add_flag("--debootstrap", art.debootstrap, "Debian minbase with openssh-server, curl, git, iproute2, ...");
      build->add_option("--suite", art.suite, "Debian suite for --debootstrap")->capture_default_str();
      build->add_option("--packages", art.packages, "Extra packages for --debootstrap (a,b,c)")->delimiter(',');
      build->add_flag("--json", p.out.json, "Print JSON");
      build->callback([&, set_kind] {
        set_kind();
        p.action = [&](const dirs& d) { return cmd_artifact_build(d, p.out, art); };
      });
      auto* pull = grp->add_subcommand("pull", "Pull an image from an OCI registry, straight into ext4");
      pull->add_option("reference", art.reference, "[REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]")->required();
      pull->add_option("--name", art.name, "Local image name (default: from the reference, e.g. python-3.12)");
      pull->add_option("--platform", art.platform, "OS/ARCH[/VARIANT] to pick from a multi-platform image")
        ->default_str("linux/amd64");
      pull->add_option("--username", art.username, "Registry user (the password comes from --password-stdin)");
      pull->add_flag("--password-stdin", art.password_stdin, "Read the registry password from standard input");
      pull->add_flag("--insecure-registry", art.insecure, "Plain HTTP, no TLS (a registry on your own host)");
      pull->add_flag("--json", p.out.json, "Print JSON");
      pull->callback([&, set_kind] {
        set_kind();
        if (art.name.empty())
          art.name = default_image_name(art.reference);
        p.action = [&](const dirs& d) { return cmd_artifact_build(d, p.out, art); };
      });
      auto* cache = grp->add_subcommand("cache", "The cache of registry blobs that pulls share");
      cache->require_subcommand(1);
      auto* prune = cache->add_subcommand("prune", "Remove cached registry blobs no running pull is using");
      prune->add_flag("--dry-run", st.dry_run, "Only say what would be freed");
      prune->add_flag("--json", p.out.json, "Print JSON");
      prune->callback([&] { p.action = [&](const dirs& d) { return cmd_image_cache_prune(d, p.out, st.dry_run); }; });
      auto* imp = grp->add_subcommand("import", "Import an image from a directory tree or a tar file");
      imp->add_option("name", art.name, "Image name")->required();
      imp->add_option("--dir", art.dir, "A root filesystem tree");
      imp->add_option("--tar", art.tar, "A tar file (plain, gzip, xz or zstd)");
      imp->add_flag("--json", p.out.json, "Print JSON");
      imp->callback([&, set_kind] {
        set_kind();
        p.action = [&](const dirs& d) { return cmd_artifact_build(d, p.out, art); };
      });
    }
    auto* list = grp->add_subcommand("list", std::string("List ") + kind + "s");
    list->alias("ls");
    list->add_flag("--json", p.out.json, "Print JSON");
    list->callback(
      [&, kernel] { p.action = [&, kernel](const dirs& d) { return cmd_artifact_list(d, p.out, kernel); }; });
    auto* show = grp->add_subcommand("show", std::string("Show one ") + kind + ": versions, files, sha256s");
    show->add_option("name", art_name, "Name")->required();
    show->add_flag("--json", p.out.json, "Print JSON");
    show->callback(
      [&, kernel] { p.action = [&, kernel](const dirs& d) { return cmd_artifact_show(d, p.out, kernel, art_name); }; });
    auto* rm = grp->add_subcommand("rm", std::string("Remove a ") + kind + " and all its versions");
    rm->add_option("name", art_name, "Name")->required();
    rm->add_flag("--json", p.out.json, "Print JSON");
    rm->callback([&, kernel] {
      p.action = [&, kernel](const dirs& d) { return cmd_artifact_remove(d, p.out, kernel, art_name); };
    });
  }

  auto* setup = app.add_subcommand("setup", "Import the default kernel and build the default image (once)");
  setup->add_flag("--json", p.out.json, "Print JSON");
  setup->footer("Imports Debian's cloud kernel as kernel \"default\" and builds image \"default\" with debootstrap\n"
                "(bookworm, openssh-server, curl, git, iproute2); later runs see them and return at once.\n\n"
                "Example:\n  banger setup");
  setup->callback([&] { p.action = [&](const dirs& d) { return cmd_setup(d, p.out); }; });
}

} // namespace banger::cli
