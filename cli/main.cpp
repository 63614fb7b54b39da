// banger: the command-line client. main() is the table of contents: the global flags, one
// registration per command group (register.hpp), then the chosen command.
// Exit codes: 0 ok, 1 failure, 2 usage error, 3 `daemon status` when not running.
#include <unistd.h>

#include <string_view>

#include <CLI/CLI.hpp>

#include "cli/register.hpp"
#include "common/paths.hpp"

using namespace banger;
using namespace banger::cli;

namespace {

constexpr const char* top_footer = R"(Examples:
  banger status                 # starts the daemon if needed and shows what it holds
  banger events --follow        # watch every state change as it happens
  banger daemon logs -f         # the daemon's own log

Every command that lists or shows takes --json. Errors print as `banger: <message> (op-xxxxxx)`;
quote the op id when reporting a problem: it is on every log line and journal event of that request.)";

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"banger: throwaway and persistent microVMs for developers"};
  app.footer(top_footer);
  app.require_subcommand(1);
  bool system_mode = false;
  app.add_flag("--system", system_mode, "Talk to the system daemon (/run/banger) instead of your own");

  parsed_command p;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--") {
      p.after_dashdash = static_cast<std::size_t>(argc - i - 1);
      break;
    }
  register_daemon_commands(app, p);
  register_artifact_commands(app, p);
  register_vm_commands(app, p);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  auto d = resolve_dirs(system_mode ? install_mode::system : install_mode::dev, process_env(), ::geteuid());
  if (!d)
    return report(d.err(), p.out);
  return p.action ? p.action(*d) : 2;
}
