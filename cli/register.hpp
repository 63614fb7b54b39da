// banger's command line, one registration function per command group: each adds its subcommands,
// options and help to the CLI11 app and, when one is chosen, sets what main() runs. The option
// storage a group needs lives in a struct it hands to parsed_command::keep, so it outlives
// parsing. CLI11 stays in these .cpp files (it costs seconds per translation unit).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "cli/commands.hpp"

namespace CLI {
class App;
}

namespace banger::cli {

/// What parsing decided: the command to run and the output options every command shares.
struct parsed_command {
  output_opts out;
  std::function<int(const dirs&)> action;
  std::vector<std::shared_ptr<void>> kept; ///< the groups' option storage
  std::size_t after_dashdash = 0;          ///< arguments after the first "--" on the command line

  /// A `T` that lives as long as this (option storage for a group's callbacks).
  template <class T>
  T& keep() {
    auto p = std::make_shared<T>();
    kept.push_back(p);
    return *p;
  }
};

/// ping, version, status, events, daemon start|stop|status|logs.
void register_daemon_commands(CLI::App& app, parsed_command& p);
/// kernel import|pull|export-bundle|list|show|rm, image build|import|list|show|rm, setup.
void register_artifact_commands(CLI::App& app, parsed_command& p);
/// vm create|start|stop|restart|kill|pause|resume|delete|list|show|set|prune|logs|exec|ssh|ping|health|
/// ports|run, ps.
void register_vm_commands(CLI::App& app, parsed_command& p);

} // namespace banger::cli
