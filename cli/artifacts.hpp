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

int cmd_artifact_build(const dirs& d, const output_opts& o, const artifact_opts& a);
int cmd_artifact_list(const dirs& d, const output_opts& o, bool kernel);
int cmd_artifact_show(const dirs& d, const output_opts& o, bool kernel, const std::string& name);
int cmd_artifact_remove(const dirs& d, const output_opts& o, bool kernel, const std::string& name);

/// `banger kernel export-bundle NAME FILE`.
int cmd_kernel_export(const dirs& d, const output_opts& o, const std::string& name, const std::string& file);

/// The catalog `kernel pull` uses without --catalog: $BANGER_CATALOG, else none.
std::string default_catalog();

/// `banger setup`: the default kernel (Debian's cloud kernel) and image (debootstrap bookworm),
/// each built only when missing.
int cmd_setup(const dirs& d, const output_opts& o);

} // namespace banger::cli
