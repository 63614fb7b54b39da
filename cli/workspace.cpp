#include "cli/workspace.hpp"

#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "common/text.hpp"
#include "workspace/rules.hpp"
#include "workspace/scan.hpp"

namespace banger::cli {

namespace {

using json = nlohmann::json;

/// A shipped name for a terminal: as it is, unless it holds control characters (a newline in a
/// name would forge a line of the listing), then quoted with escapes.
std::string shown(std::string_view name) {
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return quoted(name, 4096);
  return std::string(name);
}

} // namespace

int cmd_workspace_dry_run(const workspace_opts& w, const output_opts& o) {
  auto src = workspace::scan(w.path, {.include_untracked = w.include_untracked});
  if (!src)
    return report(src.err(), o);
  std::string guest = w.guest_path.empty() ? workspace::default_guest_path(src->top) : w.guest_path;
  if (auto ok = workspace::validate_guest_path(guest); !ok)
    return report(ok.err(), o);
  std::size_t links = 0;
  for (const auto& e : src->entries)
    links += e.kind == workspace::entry_kind::symlink;
  std::size_t files = src->entries.size() - links;

  if (o.json) {
    json entries = json::array();
    for (const auto& e : src->entries) {
      json j = {{"path", e.path},
                {"kind", e.kind == workspace::entry_kind::file ? "file" : "symlink"},
                {"mode", fmt::format("{:04o}", e.mode)},
                {"size", e.size},
                {"untracked", e.untracked}};
      if (e.kind == workspace::entry_kind::symlink)
        j["target"] = e.target;
      entries.push_back(std::move(j));
    }
    json out = {{"checkout", src->top.string()}, {"prefix", src->prefix},  {"head", src->head}, {"branch", src->branch},
                {"guest_path", guest},           {"files", files},         {"symlinks", links}, {"bytes", src->bytes},
                {"entries", std::move(entries)}, {"skipped", src->skipped}};
    // Names are bytes; JSON needs UTF-8: invalid sequences are shown as U+FFFD here.
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  for (const auto& e : src->entries) {
    if (e.kind == workspace::entry_kind::symlink)
      fmt::print("{:>10}  {} -> {}\n", e.size, shown(e.path), shown(e.target));
    else
      fmt::print("{:>10}  {}{}\n", e.size, shown(e.path), e.untracked ? "  (untracked)" : "");
  }
  std::string head = src->head.empty() ? "no commit yet" : "HEAD " + src->head.substr(0, 12);
  if (!src->branch.empty())
    head += " on " + src->branch;
  fmt::print("{} file{}{}, {}, from {} ({}) to {}; nothing was shipped (--dry-run)\n", files, files == 1 ? "" : "s",
             links ? fmt::format(" and {} symlink{}", links, links == 1 ? "" : "s") : "", human_bytes(src->bytes),
             src->top.string(), head, guest);
  for (const auto& k : src->skipped)
    fmt::print("not shipped: {}\n", shown(k));
  return 0;
}

} // namespace banger::cli
