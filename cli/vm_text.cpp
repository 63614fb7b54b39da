// The pure parts of the vm commands (see vm.hpp): validation, ages, the table, JSON, shell
// quoting, the ssh command line. No I/O, no RPC; the unit tests in vm.test.cpp cover them.
#include <algorithm>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/vm.hpp"
#include "common/text.hpp"
#include "journal/render.hpp"

namespace banger::cli {

using json = nlohmann::json;

expected<void> split_run_arguments(vm_run_opts& r, std::vector<std::string> positionals, std::size_t after_dashdash) {
  std::size_t after = std::min(after_dashdash, positionals.size());
  std::size_t before = positionals.size() - after;
  if (before > 1)
    return make_error(errc::bad_request,
                      fmt::format("`vm run` takes at most one PATH before `--`, and the command after it: "
                                  "banger vm run {} -- {}",
                                  shell_quote(positionals[0]),
                                  shell_join({positionals.begin() + 1, positionals.end()})));
  if (before == 1)
    r.workspace.path = positionals[0];
  r.exec.argv.assign(positionals.begin() + static_cast<std::ptrdiff_t>(before), positionals.end());
  if (r.workspace.path.empty()) {
    if (r.dry_run)
      return make_error(errc::bad_request, "--dry-run lists what a checkout would ship: banger vm run --dry-run PATH");
    if (r.workspace.include_untracked || !r.workspace.guest_path.empty())
      return make_error(errc::bad_request,
                        "--include-untracked and --guest-path are about a checkout: banger vm run [OPTIONS] PATH -- "
                        "COMMAND");
  }
  return {};
}

expected<void> validate_env(std::string_view kv) {
  auto eq = kv.find('=');
  auto key = kv.substr(0, eq);
  bool ok = eq != std::string_view::npos && !key.empty() && !(key[0] >= '0' && key[0] <= '9') &&
            std::all_of(key.begin(), key.end(), [](char ch) {
              return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
            });
  if (!ok)
    return make_error(errc::bad_request,
                      fmt::format("invalid --env {}: expected KEY=VALUE (e.g. --env LANG=C.UTF-8)", quoted(kv)));
  return {};
}

std::string format_age(std::int64_t since_ns, std::int64_t now_ns) {
  if (since_ns <= 0)
    return "-";
  std::int64_t s = std::max<std::int64_t>(0, (now_ns - since_ns) / 1'000'000'000);
  if (s < 60)
    return fmt::format("{}s", s);
  if (s < 3600)
    return fmt::format("{}m", s / 60);
  if (s < 86400)
    return fmt::format("{}h", s / 3600);
  return fmt::format("{}d", s / 86400);
}

std::string shell_quote(std::string_view arg) {
  auto safe = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           std::string_view("_@%+=:,./-").find(ch) != std::string_view::npos;
  };
  if (!arg.empty() && std::all_of(arg.begin(), arg.end(), safe))
    return std::string(arg);
  std::string out = "'";
  for (char ch : arg) {
    if (ch == '\'')
      out += "'\\''";
    else
      out += ch;
  }
  out += '\'';
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty())
      out += ' ';
    out += shell_quote(a);
  }
  return out;
}

std::vector<std::string> ssh_argv(const ssh_target& t, bool stdin_is_tty, const std::vector<std::string>& command) {
  std::vector<std::string> a{"ssh",
                             "-i",
                             t.identity_file,
                             "-o",
                             "UserKnownHostsFile=" + t.known_hosts_file,
                             "-o",
                             "StrictHostKeyChecking=yes",
                             "-o",
                             "HostKeyAlias=" + t.host_key_alias,
                             "-o",
                             "IdentitiesOnly=yes"};
  if (!stdin_is_tty) {
    a.emplace_back("-o");
    a.emplace_back("BatchMode=yes");
  }
  a.emplace_back("-o");
  a.emplace_back("LogLevel=ERROR");
  a.push_back((t.user.empty() ? std::string("root") : t.user) + "@" + t.ip);
  // In a VM with a workspace the session starts in it: a command runs there, and without one a
  // login shell does (on a terminal, as ssh gives one when it runs no command).
  std::string cd = t.workspace.empty() ? "" : "cd " + shell_quote(t.workspace) + " && ";
  if (!command.empty()) {
    a.emplace_back("--");
    a.push_back(cd + shell_join(command));
  } else if (!cd.empty()) {
    if (stdin_is_tty)
      a.insert(a.end() - 1, "-t");
    a.emplace_back("--");
    a.push_back(cd + "exec \"${SHELL:-/bin/sh}\" -l");
  }
  return a;
}

int exit_code(std::optional<int> exited, std::optional<int> signaled) {
  if (exited)
    return *exited;
  if (signaled)
    return 128 + *signaled;
  return 1;
}

std::string last_lines(std::string_view text, std::size_t n) {
  if (n == 0)
    return std::string(text);
  // A trailing newline ends the last line; it does not start another.
  std::size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n')
    --end;
  std::size_t pos = end;
  for (std::size_t seen = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++seen == n)
      break;
  }
  return std::string(text.substr(pos));
}

namespace {

json to_json(const vm_info& v) {
  return {{"name", v.name},
          {"id", v.id},
          {"state", v.state},
          {"image", v.image},
          {"image_version", v.image_version},
          {"kernel", v.kernel},
          {"kernel_version", v.kernel_version},
          {"vcpus", v.vcpus},
          {"memory_mib", v.memory_mib},
          {"disk_mib", v.disk_mib},
          {"ip", v.ip},
          {"created_ns", v.created_ns},
          {"state_since_ns", v.state_since_ns},
          {"last_error", v.last_error},
          {"pid", v.pid},
          {"console_log", v.console_log},
          {"resources", v.resources},
          {"workspace", v.workspace.guest_path.empty() && !v.workspace.pending
                          ? json(nullptr)
                          : json{{"host_path", v.workspace.host_path},
                                 {"guest_path", v.workspace.guest_path},
                                 {"head", v.workspace.head},
                                 {"branch", v.workspace.branch},
                                 {"digest", v.workspace.digest},
                                 {"files", v.workspace.files},
                                 {"bytes", v.workspace.bytes},
                                 {"prepared_ns", v.workspace.prepared_ns},
                                 {"pending", v.workspace.pending},
                                 {"include_untracked", v.workspace.include_untracked}}}};
}

/// The WORKSPACE column: the guest path, "-" when none, "(preparing)" while one is pending.
std::string workspace_cell(const vm_info& v) {
  if (v.workspace.pending)
    return v.workspace.guest_path.empty() ? "(preparing)" : v.workspace.guest_path + " (preparing)";
  return v.workspace.guest_path.empty() ? "-" : v.workspace.guest_path;
}

std::string_view state_colour(std::string_view state) {
  if (state == "running")
    return "32";
  if (state == "starting" || state == "stopping")
    return "33";
  return "2";
}

} // namespace

std::string vm_json(const vm_info& v) { return to_json(v).dump(); }

std::string vm_list_json(const std::vector<vm_info>& vms) {
  json all = json::array();
  for (const auto& v : vms)
    all.push_back(to_json(v));
  return all.dump();
}

std::string vm_table(const std::vector<vm_info>& vms, std::int64_t now_ns, bool colour) {
  constexpr std::size_t ncol = 8;
  using row = std::array<std::string, ncol>;
  std::vector<row> rows{{"NAME", "STATE", "IMAGE", "IP", "VCPU", "MEM", "WORKSPACE", "AGE"}};
  for (const auto& v : vms)
    rows.push_back({v.name, v.state, v.image.empty() ? "-" : v.image, v.ip.empty() ? "-" : v.ip,
                    std::to_string(v.vcpus), fmt::format("{}MiB", v.memory_mib), workspace_cell(v),
                    format_age(v.created_ns, now_ns)});
  std::array<std::size_t, ncol> width{};
  for (const auto& r : rows)
    for (std::size_t i = 0; i < ncol; ++i)
      width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (std::size_t n = 0; n < rows.size(); ++n) {
    std::string line;
    for (std::size_t i = 0; i < ncol; ++i) {
      bool last = i + 1 == ncol;
      std::string cell = last ? rows[n][i] : fmt::format("{:<{}}", rows[n][i], width[i]);
      if (i == 1 && n > 0)
        cell = paint(cell, state_colour(rows[n][i]), colour);
      line += cell;
      if (!last)
        line += "  ";
    }
    out += line + "\n";
  }
  return out;
}

std::string vm_show_text(const vm_info& v, std::int64_t now_ns) {
  auto with_version = [](const std::string& name, const std::string& version) {
    if (name.empty())
      return std::string("-");
    return version.empty() ? name : fmt::format("{} (version {})", name, version);
  };
  auto time = [&](std::int64_t ns) {
    return ns > 0 ? fmt::format("{} ({} ago)", journal::format_time(ns), format_age(ns, now_ns)) : std::string("-");
  };
  std::string resources;
  for (const auto& r : v.resources)
    resources += (resources.empty() ? "" : ", ") + r;
  std::string out;
  auto line = [&](std::string_view key, const std::string& value) {
    out += fmt::format("{:<12} {}\n", std::string(key) + ":", value.empty() ? "-" : value);
  };
  line("name", v.name);
  line("id", v.id);
  line("state", fmt::format("{} since {}", v.state, time(v.state_since_ns)));
  line("image", with_version(v.image, v.image_version));
  line("kernel", with_version(v.kernel, v.kernel_version));
  line("vcpus", std::to_string(v.vcpus));
  line("memory", fmt::format("{} MiB", v.memory_mib));
  line("disk", fmt::format("{} MiB", v.disk_mib));
  line("ip", v.ip);
  line("created", time(v.created_ns));
  line("pid", v.pid > 0 ? std::to_string(v.pid) : "");
  line("console", v.console_log);
  line("resources", resources);
  if (!v.workspace.guest_path.empty() || v.workspace.pending) {
    const auto& w = v.workspace;
    line("workspace",
         fmt::format("{} from {}{}", w.guest_path.empty() ? "-" : w.guest_path, w.host_path.empty() ? "-" : w.host_path,
                     w.pending ? " (a preparation was cut short)" : ""));
    if (!w.guest_path.empty())
      line("  shipped", fmt::format("{} files, {} bytes, {} ({}), HEAD {}{}", w.files, w.bytes, time(w.prepared_ns),
                                    w.digest.substr(0, 12), w.head.empty() ? "-" : w.head.substr(0, 12),
                                    w.branch.empty() ? "" : " on " + w.branch));
  }
  if (!v.last_error.empty())
    line("last error", v.last_error);
  return out;
}

} // namespace banger::cli
