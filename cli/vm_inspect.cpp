// What is my VM doing: `vm ping` and `vm health` (is its agent answering, and how fast; both go
// through the daemon's connection to the agent, vmPing, so they measure the path every exec
// takes) and `vm ports` (its sockets, from the agent through vmPorts, probed for HTTP(S) from
// here, the host side).
#include <algorithm>
#include <array>
#include <future>
#include <iostream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/vm_rpc.hpp"
#include "common/text.hpp"
#include "fetch/http.hpp"

namespace banger::cli {

using namespace vm_detail;

namespace {

struct ping_reply {
  std::string version, hostname;
  std::uint64_t uptime_ms = 0, rtt_us = 0;
};

expected<ping_reply> ping_on(client& c, const std::string& name) {
  auto req = c.conn().daemon.vmPingRequest();
  req.setName(name);
  auto r = req.send().wait(c.conn().io.waitScope);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  return ping_reply{r.getVersion(), r.getHostname(), r.getUptimeMs(), r.getRttUs()};
}

double ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

} // namespace

std::string ping_summary(std::vector<std::uint64_t> rtt_us) {
  if (rtt_us.empty())
    return "no replies";
  std::sort(rtt_us.begin(), rtt_us.end());
  auto n = rtt_us.size();
  double median = n % 2 ? ms(rtt_us[n / 2]) : (ms(rtt_us[n / 2 - 1]) + ms(rtt_us[n / 2])) / 2;
  return fmt::format("{} repl{}: min {:.2f} / median {:.2f} / max {:.2f} ms", n, n == 1 ? "y" : "ies", ms(rtt_us[0]),
                     median, ms(rtt_us[n - 1]));
}

int cmd_vm_ping(const dirs& d, const output_opts& o, const std::string& name, unsigned count,
                std::chrono::milliseconds interval) {
  if (count == 0)
    return report(make_error(errc::bad_request, "--count must be at least 1"), o);
  return with_daemon(d, o, [&](client& c) {
    std::vector<std::uint64_t> rtts;
    ping_reply first;
    for (unsigned i = 0; i < count; ++i) {
      if (i > 0)
        std::this_thread::sleep_for(interval);
      auto r = ping_on(c, name);
      if (!r)
        return report(r.err(), o);
      if (i == 0) {
        first = *r;
        if (!o.json)
          std::cout << fmt::format("{}: banger-agent {} (hostname {}, up {:.1f} s)\n", name, quoted(first.version),
                                   quoted(first.hostname), static_cast<double>(first.uptime_ms) / 1000.0);
      }
      rtts.push_back(r->rtt_us);
      if (!o.json)
        std::cout << fmt::format("reply {}: {:.2f} ms\n", i + 1, ms(r->rtt_us)) << std::flush;
    }
    if (o.json) {
      nlohmann::json j{{"name", name},
                       {"version", first.version},
                       {"hostname", first.hostname},
                       {"uptime_ms", first.uptime_ms},
                       {"rtt_ms", nlohmann::json::array()}};
      for (auto us : rtts)
        j["rtt_ms"].push_back(ms(us));
      std::cout << j.dump() << "\n";
    } else {
      std::cout << ping_summary(rtts) << "\n";
    }
    return 0;
  });
}

int cmd_vm_health(const dirs& d, const output_opts& o, const std::string& name) {
  return with_daemon(d, o, [&](client& c) {
    auto v = show_on(c, name);
    if (!v)
      return report(v.err(), o);
    nlohmann::json j{{"name", name}, {"state", v->state}};
    std::string reason;
    std::optional<ping_reply> ping;
    if (v->state != "running") {
      reason = fmt::format("it is {}{}", v->state,
                           v->state == "stopped" ? fmt::format(" (`banger vm start {}`)", name) : std::string());
      if (!v->last_error.empty())
        reason += "; last error: " + v->last_error;
    } else if (auto r = ping_on(c, name); !r) {
      reason = r.err().message;
    } else {
      ping = *r;
    }
    j["healthy"] = ping.has_value();
    if (ping) {
      j["agent_rtt_ms"] = ms(ping->rtt_us);
      j["agent_version"] = ping->version;
      j["uptime_ms"] = ping->uptime_ms;
    } else {
      j["reason"] = reason;
    }
    if (o.json)
      std::cout << j.dump() << "\n";
    else if (ping)
      std::cout << fmt::format("{}: healthy: the agent answered in {:.2f} ms (banger-agent {}, up {:.1f} s)\n", name,
                               ms(ping->rtt_us), quoted(ping->version), static_cast<double>(ping->uptime_ms) / 1000.0);
    else
      std::cout << fmt::format("{}: unhealthy: {}\n", name, reason);
    return ping ? 0 : 1;
  });
}

namespace {

bool loopback(const std::string& address) { return address.rfind("127.", 0) == 0 || address == "::1"; }

/// Guest text as a table cell: as it is when it is plain printable ASCII, else quoted.
std::string cell(const std::string& s) {
  bool plain =
    !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char ch) { return ch > ' ' && ch < 0x7f; });
  return plain ? s : s.empty() ? "-" : quoted(s, 64);
}

} // namespace

std::vector<port_row> merge_ports(const std::vector<guest_port>& ports) {
  std::map<std::tuple<std::string, std::uint16_t, std::string>, port_row> rows;
  for (bool v6 : {false, true})
    for (const auto& p : ports) {
      if (p.protocol.ends_with('6') != v6)
        continue;
      std::string proto = v6 ? p.protocol.substr(0, p.protocol.size() - 1) : p.protocol;
      auto& r = rows[{proto, p.port, p.process}];
      r.protocol = proto;
      r.port = p.port;
      r.process = p.process;
      if (std::find(r.addresses.begin(), r.addresses.end(), p.address) == r.addresses.end())
        r.addresses.push_back(p.address);
      r.from_host = r.from_host || !loopback(p.address);
    }
  std::vector<port_row> out;
  for (auto& [key, r] : rows)
    out.push_back(std::move(r));
  return out;
}

std::string ports_table(const std::vector<port_row>& rows) {
  constexpr std::size_t ncol = 5;
  std::vector<std::array<std::string, ncol>> cells{{"PROTO", "PORT", "ADDRESS", "PROCESS", "URL"}};
  for (const auto& r : rows) {
    std::string addresses;
    for (const auto& a : r.addresses)
      addresses += (addresses.empty() ? "" : ",") + cell(a);
    cells.push_back({r.protocol, std::to_string(r.port), addresses, cell(r.process),
                     r.url.empty() ? (r.from_host ? "-" : "(guest only)") : r.url});
  }
  std::array<std::size_t, ncol> width{};
  for (const auto& c : cells)
    for (std::size_t i = 0; i < ncol; ++i)
      width[i] = std::max(width[i], c[i].size());
  std::string out;
  for (const auto& c : cells) {
    std::string line;
    for (std::size_t i = 0; i + 1 < ncol; ++i)
      line += fmt::format("{:<{}}  ", c[i], width[i]);
    out += line + c[ncol - 1] + "\n";
  }
  return out;
}

std::string ports_json(const std::vector<port_row>& rows) {
  auto a = nlohmann::json::array();
  for (const auto& r : rows)
    a.push_back({{"protocol", r.protocol},
                 {"port", r.port},
                 {"addresses", r.addresses},
                 {"process", r.process},
                 {"from_host", r.from_host},
                 {"url", r.url.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.url)}});
  return a.dump();
}

int cmd_vm_ports(const dirs& d, const output_opts& o, const std::string& name, bool probe) {
  return with_daemon(d, o, [&](client& c) {
    auto v = show_on(c, name);
    if (!v)
      return report(v.err(), o);
    auto req = c.conn().daemon.vmPortsRequest();
    req.setName(name);
    auto r = req.send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    std::vector<guest_port> listed;
    for (auto p : r.getPorts())
      listed.push_back({p.getProtocol(), p.getAddress(), p.getPort(), p.getProcess()});
    auto rows = merge_ports(listed);
    if (probe && !v->ip.empty()) {
      // All probes at once (each bounded), so a VM with many quiet ports answers in about a second.
      std::vector<std::pair<port_row*, std::future<std::string>>> probes;
      for (auto& row : rows)
        if (row.protocol == "tcp" && row.from_host)
          probes.emplace_back(&row, std::async(std::launch::async, [ip = v->ip, port = row.port] {
            for (const char* scheme : {"http", "https"}) {
              auto url = fmt::format("{}://{}:{}/", scheme, ip, port);
              if (fetch::probe_http(url, std::chrono::milliseconds(1500)))
                return url;
            }
            return std::string();
          }));
      for (auto& [row, url] : probes)
        row->url = url.get();
    }
    std::cout << (o.json ? ports_json(rows) + "\n" : ports_table(rows));
    return 0;
  });
}

} // namespace banger::cli
