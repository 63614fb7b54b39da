// `banger kernel ...` and `banger image ...` commands.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.hpp"

namespace banger::cli {

struct artifact_opts {
  bool kernel = true; ///< kernel or image
  std::string name;
  // sources (exactly one)
  std::string deb, apt, vmlinux, initrd, modules, dir, tar, catalog;
  bool busybox = false, debootstrap = false;
  std::string suite = "bookworm";
  std::vector<std::string> packages;
  // image pull
  std::string reference, platform, username;
  bool password_stdin = false, insecure = false;
  bool force = false;
};

/// The local name `image pull REF` gives an image without --name: the repository's last
/// component, then "-TAG" unless the tag is "latest" ("reg:5000/team/python:3.12" ->
/// "python-3.12"), lowercased, other characters as '-', at most 63 characters.
std::string default_image_name(const std::string& reference);

class client;

/// Whether `--image VALUE` is a registry reference rather than a local image name: it has a
/// '/', ':' or '@', which image names cannot ("python:3.12", "reg:5000/team/app").
bool is_image_reference(const std::string& image);

/// The local image `vm create`/`vm run --image VALUE` uses: VALUE itself when it is a name;
/// for a registry reference, the image last pulled from it, or (pull on first use) one pulled
/// now under default_image_name(), with `image pull`'s progress on stderr unless `quiet`. A
/// name already taken by an image from another source is errc::conflict, saying what to run.
expected<std::string> image_for_vm(client& c, const dirs& d, const std::string& image, const std::string& label,
                                   bool quiet);

int cmd_artifact_build(const dirs& d, const output_opts& o, const artifact_opts& a);
int cmd_artifact_list(const dirs& d, const output_opts& o, bool kernel);
int cmd_artifact_show(const dirs& d, const output_opts& o, bool kernel, const std::string& name);
int cmd_artifact_remove(const dirs& d, const output_opts& o, bool kernel, const std::string& name);

/// `banger image cache prune [--dry-run]`: "freed 1.2 GiB across 47 blobs in 0.1s".
int cmd_image_cache_prune(const dirs& d, const output_opts& o, bool dry_run);

/// `banger kernel export-bundle NAME FILE`.
int cmd_kernel_export(const dirs& d, const output_opts& o, const std::string& name, const std::string& file);

/// The catalog `kernel pull` uses without --catalog: $BANGER_CATALOG, else none.
std::string default_catalog();

/// `banger setup`: the default kernel (Debian's cloud kernel) and image (debootstrap bookworm),
/// each built only when missing.
int cmd_setup(const dirs& d, const output_opts& o);

} // namespace banger::cli
