// See figures.hpp.
#include "bench/vm_run/figures.hpp"

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <sstream>

#include "tests/support/proc.hpp"

namespace banger::bench {

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string samples(const std::vector<double>& v) {
  std::string out;
  for (double x : v)
    out += fmt::format("{}{:.2f}", out.empty() ? "" : " ", x);
  return out;
}

void stage_table::add(const std::string& stage, double secs) {
  for (auto& [name, v] : rows)
    if (name == stage) {
      v.push_back(secs);
      return;
    }
  rows.push_back({stage, {secs}});
}

std::optional<double> parse_stages(const timed_run& t, const std::string& label, stage_table& stages) {
  std::optional<double> ready;
  const std::string prefix = "[" + label + "] ";
  for (const auto& [at, line] : t.lines) {
    if (line.rfind(prefix, 0) != 0)
      continue;
    auto rest = line.substr(prefix.size());
    // "ready in 1.2s" (vm create), "NAME ready in 1.2s" (vm run).
    if (auto r = (" " + rest).find(" ready in "); r != std::string::npos) {
      ready = std::strtod(rest.c_str() + r + 9, nullptr);
      continue;
    }
    auto sp = rest.rfind(' ');
    if (sp == std::string::npos || rest.size() < sp + 3 || rest.back() != 's')
      continue;
    auto value = rest.substr(sp + 1, rest.size() - sp - 2);
    if (value.find_first_not_of("0123456789.") != std::string::npos)
      continue;
    stages.add(rest.substr(0, sp), std::stod(value));
  }
  return ready;
}

double line_time(const timed_run& t, const std::string& needle) {
  for (const auto& [at, line] : t.lines)
    if (line.find(needle) != std::string::npos)
      return at;
  return -1;
}

void add_run(run_split& s, const timed_run& t) {
  s.total.push_back(t.secs);
  double ready = line_time(t, " ready in "),
         stopping = line_time(t, "[vm run] stopping ") >= 0 ? line_time(t, "[vm run] stopping ")
                                                            : line_time(t, "[vm run] deleting "),
         deleted = line_time(t, "[vm run] deleted ");
  if (ready >= 0 && stopping >= ready && deleted >= stopping) {
    s.to_ready.push_back(ready);
    s.exec.push_back(stopping - ready);
    s.stop_delete.push_back(deleted - stopping);
    s.after.push_back(t.secs - deleted);
  }
  parse_stages(t, "vm run", s.stages);
}

void print_stages(const stage_table& st, const char* indent) {
  for (const auto& [name, v] : st.rows)
    fmt::print("{}{:<22} {:6.2f} s   ({})\n", indent, name, median(v), samples(v));
}

std::string loadavg() {
  std::istringstream in(banger::test::slurp("/proc/loadavg"));
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

} // namespace banger::bench
