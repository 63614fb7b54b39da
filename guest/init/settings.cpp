// See settings.hpp.
#include "guest/init/settings.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/init/console.hpp"
#include "guest/init/services.hpp"

namespace banger::guest::init {

bool awaiting_settings = false;

std::string await_settings(pid_t& agent) {
  int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in >= 0)
    ::inotify_add_watch(in, "/run", IN_CREATE | IN_MOVED_TO);
  for (;;) {
    if (exists(settings_file)) {
      if (in >= 0)
        ::close(in);
      return read_small(settings_file);
    }
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, in >= 0 ? 1 : 0, 1000) > 0) {
      char buf[4096];
      while (::read(in, buf, sizeof buf) > 0) {
      }
    }
    int status = 0;
    if (agent > 0 && ::waitpid(agent, &status, WNOHANG) == agent) {
      say("banger-agent exited while waiting for the host's settings; restarting it");
      agent = fork_agent();
    }
  }
}

} // namespace banger::guest::init
