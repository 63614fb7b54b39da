// See ops.hpp. Link state is read over rtnetlink (link.hpp) and nftables state as JSON
// (`nft -j list`), never from /sys, which shows the network namespace of whoever mounted it.
#include "helper/ops.hpp"

#include <cerrno>
#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "helper/link.hpp"
#include "helper/validate.hpp"

namespace banger::helper {

namespace {

using json = nlohmann::json;

constexpr std::string_view nat_table = "banger";

expected<std::string> tool(std::string_view name, std::string_view package) {
  auto p = find_program(name);
  if (!p)
    return make_error(errc::unavailable, std::string(name) +
                                           " not found in /usr/sbin, /usr/bin, /sbin or /bin; install " +
                                           std::string(package));
  return p->string();
}

/// Runs argv (argv[0] a tool name) to completion; non-zero exit is operation_failed naming the
/// command and its stderr.
expected<process_result> run_checked(std::vector<std::string> argv, std::string_view package) {
  auto path = tool(argv[0], package);
  if (!path)
    return std::move(path).err();
  argv[0] = *path;
  process_options opts;
  opts.timeout = std::chrono::seconds(30);
  auto r = run_process(argv, opts);
  if (r.exit_code != 0) {
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' '))
      err.pop_back();
    return make_error(errc::operation_failed,
                      "`" + describe_command(argv) + "` failed (" +
                        (r.timed_out ? std::string("timed out") : "exit " + std::to_string(r.exit_code)) +
                        (err.empty() ? ")" : "): " + err));
  }
  return r;
}

expected<json> parse_json(const std::string& text, std::string_view what) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    return make_error(errc::operation_failed, "could not parse the JSON of `" + std::string(what) + "`");
  return j;
}

/// All rules of table ip banger as (chain, handle, comment); empty when the table is absent.
struct nat_rule {
  std::string chain;
  long handle = 0;
  std::string comment;
};
expected<std::optional<std::vector<nat_rule>>> list_nat_rules() {
  auto tables = run_checked({"nft", "-j", "list", "tables", "ip"}, "nftables");
  if (!tables)
    return std::move(tables).err();
  auto tj = parse_json(tables->out, "nft -j list tables ip");
  if (!tj)
    return std::move(tj).err();
  bool present = false;
  for (const auto& item : tj->value("nftables", json::array()))
    if (item.contains("table") && item["table"].value("name", "") == nat_table)
      present = true;
  if (!present)
    return std::optional<std::vector<nat_rule>>{};
  auto listed = run_checked({"nft", "-j", "list", "table", "ip", std::string(nat_table)}, "nftables");
  if (!listed)
    return std::move(listed).err();
  auto lj = parse_json(listed->out, "nft -j list table ip banger");
  if (!lj)
    return std::move(lj).err();
  std::vector<nat_rule> rules;
  for (const auto& item : lj->value("nftables", json::array()))
    if (item.contains("rule")) {
      const auto& r = item["rule"];
      rules.push_back({r.value("chain", ""), r.value("handle", 0L), r.value("comment", "")});
    }
  return std::optional<std::vector<nat_rule>>{std::move(rules)};
}

std::string nft_quote(const std::string& s) { return "\"" + s + "\""; }

} // namespace

std::string nat_rule_tag(const std::string& bridge, const std::string& cidr, const std::string& role) {
  return "banger " + bridge + " " + cidr_network(cidr) + " " + role;
}

expected<void> ensure_bridge(const std::string& name, const std::string& cidr) {
  // Defense in depth: the dispatcher validated both; these strings become ip's arguments.
  if (auto ok = validate_bridge_name(name); !ok)
    return ok;
  if (auto ok = validate_cidr(cidr); !ok)
    return ok;
  auto link = read_link(name);
  if (!link)
    return std::move(link).err();
  if (!link->exists) {
    if (auto r = run_checked({"ip", "link", "add", "name", name, "type", "bridge"}, "iproute2"); !r)
      return std::move(r).err();
  } else if (link->kind != "bridge") {
    return make_error(errc::conflict, "network interface " + name + " exists and is not a bridge (kind \"" +
                                        link->kind + "\"); remove it or configure another bridge name");
  }
  auto addrs = run_checked({"ip", "-j", "addr", "show", "dev", name}, "iproute2");
  if (!addrs)
    return std::move(addrs).err();
  auto aj = parse_json(addrs->out, "ip -j addr show");
  if (!aj)
    return std::move(aj).err();
  bool has = false;
  for (const auto& l : *aj)
    for (const auto& a : l.value("addr_info", json::array()))
      if (a.value("family", "") == "inet" &&
          a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)) == cidr)
        has = true;
  if (!has)
    if (auto r = run_checked({"ip", "addr", "add", cidr, "dev", name}, "iproute2"); !r)
      return std::move(r).err();
  if (auto r = run_checked({"ip", "link", "set", "dev", name, "up"}, "iproute2"); !r)
    return std::move(r).err();
  return {};
}

expected<void> create_tap(const std::string& name, const std::string& bridge, unsigned owner_uid) {
  // Defense in depth: the dispatcher validated all three.
  if (auto ok = validate_tap_name(name); !ok)
    return ok;
  if (auto ok = validate_bridge_name(bridge); !ok)
    return ok;
  if (auto ok = validate_uid(owner_uid); !ok)
    return ok;
  auto br = read_link(bridge);
  if (!br)
    return std::move(br).err();
  if (!br->exists || br->kind != "bridge")
    return make_error(errc::not_found, "bridge " + bridge + " does not exist; ensure the bridge first");
  auto link = read_link(name);
  if (!link)
    return std::move(link).err();
  if (link->exists) {
    if (link->kind != "tun" || !link->tap)
      return make_error(errc::conflict, "network interface " + name + " exists and is not a tap");
    if (link->owner != owner_uid)
      return make_error(errc::conflict,
                        "tap " + name + " exists, owned by " +
                          (link->owner ? "uid " + std::to_string(*link->owner) : std::string("nobody")) + ", not uid " +
                          std::to_string(owner_uid) + "; delete it first");
    if (link->master != 0 && link->master != br->index)
      return make_error(errc::conflict, "tap " + name + " exists, attached to " + link_name(link->master) + ", not " +
                                          bridge + "; delete it first");
  } else {
    if (auto ok = add_tap(name, owner_uid); !ok)
      return ok;
    link = read_link(name);
    if (!link)
      return std::move(link).err();
    if (!link->exists)
      return make_error(errc::operation_failed, "tap " + name + " vanished right after it was created");
  }
  return set_master_and_up(link->index, name, br->index, bridge);
}

expected<void> delete_tap(const std::string& name) {
  // Defense in depth: the dispatcher validated the name.
  if (auto ok = validate_tap_name(name); !ok)
    return ok;
  auto link = read_link(name);
  if (!link)
    return std::move(link).err();
  if (!link->exists)
    return {};
  // Defense in depth: a name with banger's prefix that is not a tap is not ours to delete.
  if (link->kind != "tun" || !link->tap)
    return make_error(errc::conflict, "network interface " + name + " is not a tap; banger-helper deletes only taps");
  return delete_tap_device(name);
}

expected<void> ensure_nat(const std::string& bridge, const std::string& cidr) {
  // Defense in depth: the dispatcher validated both; they become nft rule text.
  if (auto ok = validate_bridge_name(bridge); !ok)
    return ok;
  if (auto ok = validate_cidr(cidr); !ok)
    return ok;
  if (auto r = run_checked({"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}, "procps"); !r)
    return std::move(r).err();
  const std::string table(nat_table);
  if (auto r = run_checked({"nft", "add", "table", "ip", table}, "nftables"); !r)
    return std::move(r).err();
  if (auto r = run_checked({"nft", "add", "chain", "ip", table, "postrouting", "{", "type", "nat", "hook",
                            "postrouting", "priority", "srcnat", ";", "policy", "accept", ";", "}"},
                           "nftables");
      !r)
    return std::move(r).err();
  if (auto r = run_checked({"nft", "add", "chain", "ip", table, "forward", "{", "type", "filter", "hook", "forward",
                            "priority", "filter", ";", "policy", "accept", ";", "}"},
                           "nftables");
      !r)
    return std::move(r).err();
  auto rules = list_nat_rules();
  if (!rules)
    return std::move(rules).err();
  auto has = [&](const std::string& chain, const std::string& tag) {
    if (!*rules)
      return false;
    for (const auto& r : **rules)
      if (r.chain == chain && r.comment == tag)
        return true;
    return false;
  };
  const std::string net = cidr_network(cidr);
  struct wanted {
    std::string chain, role;
    std::vector<std::string> match;
  };
  const std::vector<wanted> all = {
    {"postrouting", "masquerade", {"ip", "saddr", net, "oifname", "!=", nft_quote(bridge), "masquerade"}},
    {"forward", "from-bridge", {"iifname", nft_quote(bridge), "ip", "saddr", net, "accept"}},
    {"forward",
     "to-bridge",
     {"oifname", nft_quote(bridge), "ip", "daddr", net, "ct", "state", "established,related", "accept"}},
  };
  for (const auto& w : all) {
    auto tag = nat_rule_tag(bridge, cidr, w.role);
    if (has(w.chain, tag))
      continue;
    std::vector<std::string> argv{"nft", "add", "rule", "ip", table, w.chain};
    argv.insert(argv.end(), w.match.begin(), w.match.end());
    argv.insert(argv.end(), {"comment", nft_quote(tag)});
    if (auto r = run_checked(argv, "nftables"); !r)
      return std::move(r).err();
  }
  return {};
}

expected<void> clear_nat(const std::string& bridge, const std::string& cidr) {
  // Defense in depth: the dispatcher validated both.
  if (auto ok = validate_bridge_name(bridge); !ok)
    return ok;
  if (auto ok = validate_cidr(cidr); !ok)
    return ok;
  auto rules = list_nat_rules();
  if (!rules)
    return std::move(rules).err();
  if (!*rules)
    return {};
  const std::string prefix = "banger " + bridge + " " + cidr_network(cidr) + " ";
  std::size_t left = 0;
  for (const auto& r : **rules) {
    if (r.comment.compare(0, prefix.size(), prefix) != 0) {
      ++left;
      continue;
    }
    if (auto d = run_checked(
          {"nft", "delete", "rule", "ip", std::string(nat_table), r.chain, "handle", std::to_string(r.handle)},
          "nftables");
        !d)
      return std::move(d).err();
  }
  if (left == 0)
    if (auto d = run_checked({"nft", "delete", "table", "ip", std::string(nat_table)}, "nftables"); !d)
      return std::move(d).err();
  return {};
}

expected<void> signal_vmm(int pid, int signo, const helper_config& cfg) {
  // Defense in depth: the dispatcher validated both.
  if (auto ok = validate_pid(pid); !ok)
    return ok;
  if (auto ok = validate_signal(signo); !ok)
    return ok;
  // The pidfd pins the process: if it exits and its pid is reused after the proof below, the
  // signal goes to the dead process (ESRCH), never to the newcomer.
  int raw = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (raw < 0) {
    int e = errno;
    return make_error(e == ESRCH ? errc::not_found : errc::operation_failed,
                      "pidfd_open " + std::to_string(pid) + ": " + errno_text(e));
  }
  unique_fd pidfd(raw);
  auto id = read_process_identity(pid);
  if (!id)
    return std::move(id).err();
  if (auto ok = validate_vmm_identity(*id, cfg.roots(), cfg.owner_uid); !ok)
    return ok;
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), signo, nullptr, 0) != 0) {
    int e = errno;
    return make_error(e == ESRCH ? errc::not_found : errc::operation_failed,
                      "pidfd_send_signal " + std::to_string(pid) + " signal " + std::to_string(signo) + ": " +
                        errno_text(e));
  }
  return {};
}

} // namespace banger::helper
