// `vm ping` and `vm health`: is a VM's agent answering, and how fast. Both go through the
// daemon's connection to the agent (vmPing), so they measure the path every exec takes.
#include <algorithm>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/vm_rpc.hpp"
#include "common/text.hpp"

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

} // namespace banger::cli
