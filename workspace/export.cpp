#include "workspace/export.hpp"

#include "workspace/git_meta.hpp"

namespace banger::workspace {

namespace {

// $1 guest path, $2 shipped HEAD ("" before a first commit), $3 "diff" or "commits", $4 the
// file naming the shipped tree. Every git runs with the settings that change a patch's shape
// pinned, so a synced ~/.gitconfig cannot make it one `git apply` refuses.
constexpr const char* script = R"sh(set -eu
fail() { echo "banger: $*" >&2; exit 1; }
command -v git >/dev/null 2>&1 || fail "the guest has no git; vm workspace export needs an image with git"
cd "$1" 2>/dev/null || fail "$1 is not there in the guest"
[ -d .git ] || fail "$1 is not a git repository in the guest"
g() { git -c core.quotePath=true -c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false \
  -c diff.renames=true -c color.ui=false -c core.safecrlf=false "$@"; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
index=$(g rev-parse --path-format=absolute --git-path index)
objects=$(g rev-parse --path-format=absolute --git-path objects)
[ ! -f "$index" ] || cp -p "$index" "$scratch/index"
mkdir "$scratch/objects"
export GIT_INDEX_FILE="$scratch/index" GIT_OBJECT_DIRECTORY="$scratch/objects" GIT_ALTERNATE_OBJECT_DIRECTORIES="$objects"
g add --all
if [ "$3" = commits ]; then
  g rev-parse -q --verify HEAD >/dev/null || exit 0
  if [ -n "$2" ]; then g format-patch --stdout --binary --full-index "$2..HEAD"
  else g format-patch --stdout --binary --full-index --root HEAD; fi
  g diff --cached --quiet HEAD || echo "banger: warning: the guest has changes it has not committed; they are not in the series (export without --commits has them)" >&2
  exit 0
fi
base=$(cat ".git/$4" 2>/dev/null || true)
if [ -z "$base" ]; then
  base=${2:-$(g hash-object -t tree /dev/null)}
  echo "banger: warning: this workspace does not record what was shipped; the patch is against its HEAD" >&2
fi
g diff --cached --binary --full-index --no-ext-diff --no-textconv --src-prefix=a/ --dst-prefix=b/ "$base"
)sh";

} // namespace

std::vector<std::string> export_command(const std::string& guest_path, const std::string& head, export_form form) {
  return {"sh",
          "-c",
          script,
          "banger-export",
          guest_path,
          head,
          form == export_form::commits ? "commits" : "diff",
          std::string(shipped_tree_file)};
}

} // namespace banger::workspace
