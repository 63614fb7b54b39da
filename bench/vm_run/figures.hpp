// bench-vm-run's figures: medians and sample lists as printed, the stage lines the CLI prints
// ("[LABEL] STAGE 0.03s") gathered into a table, a `vm run`'s split into ready / exec /
// stop+delete from when its lines arrived, and the host's load. Computed from what a run printed;
// print_stages prints, loadavg reads /proc/loadavg. Main thread only.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/vm_run/world.hpp"

namespace banger::bench {

double median(std::vector<double> v);
std::string samples(const std::vector<double>& v);

/// Per-stage samples in order of first appearance.
struct stage_table {
  std::vector<std::pair<std::string, std::vector<double>>> rows;
  void add(const std::string& stage, double secs);
};

/// "[LABEL] STAGE 0.03s" lines (the CLI's stage_printer) into `stages`; the value of
/// "[LABEL] ready in 1.2s" (vm create's summary line) when present.
std::optional<double> parse_stages(const timed_run& t, const std::string& label, stage_table& stages);

/// When the first line containing `needle` arrived, or -1.
double line_time(const timed_run& t, const std::string& needle);

/// `vm run --rm -- true` splits, from the times its stderr lines arrived.
struct run_split {
  std::vector<double> total, to_ready, exec, stop_delete, after;
  stage_table stages;
};

void add_run(run_split& s, const timed_run& t);

void print_stages(const stage_table& st, const char* indent);

/// The first three fields of /proc/loadavg: the host is shared, figures move with its load.
std::string loadavg();

} // namespace banger::bench
