// See services.hpp.
#include "guest/init/services.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/guest_protocol.hpp"
#include "guest/agent/entry.hpp"
#include "guest/init/console.hpp"
#include "guest/init/settings.hpp"

namespace banger::guest::init {

namespace {

/// Every service's environment.
constexpr const char* service_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* service_home = "/root";

/// In a new child: no blocked signals, a session of its own, /dev/null in, the console out.
void child_setup() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::setsid();
  int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  ::dup2(console_fd, 1);
  ::dup2(console_fd, 2);
}

pid_t spawn(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid != 0)
    return pid;
  child_setup();
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string path = std::string("PATH=") + service_path, home = std::string("HOME=") + service_home;
  std::string ready = std::string("BANGER_READY_FILE=") + ready_file; // for the agent
  char* envp[] = {path.data(), home.data(), ready.data(), nullptr};
  ::execve(args[0], args.data(), envp);
  std::fprintf(stderr, "banger-init: exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

int run_and_wait(const std::vector<std::string>& argv) {
  pid_t pid = spawn(argv);
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

pid_t fork_agent() {
  pid_t pid = ::fork();
  if (pid != 0)
    return pid;
  child_setup();
  ::close_range(3, ~0U, 0);
  ::clearenv();
  ::setenv("PATH", service_path, 1);
  ::setenv("HOME", service_home, 1);
  ::setenv("BANGER_READY_FILE", ready_file, 1);
  if (awaiting_settings)
    ::setenv("BANGER_SETTINGS_FILE", settings_file, 1);
  ::prctl(PR_SET_NAME, "banger-agent", 0, 0, 0);
  char arg0[] = "banger-agent";
  char* args[] = {arg0, nullptr};
  ::_exit(agent_main(1, args));
}

pid_t start(const service& s) { return s.in_process ? fork_agent() : spawn(s.argv); }

std::vector<service> services() {
  std::vector<service> out;
  if (!exists("/usr/sbin/sshd"))
    return out;
  ::mkdir("/run/sshd", 0755);
  // The host made this VM's key and wrote it into the work disk (mounted on /root by now).
  std::string key = "/root/" + std::string(banger::guest_protocol::work_disk_host_key);
  if (exists(key.c_str())) {
    out.push_back({"sshd", {"/usr/sbin/sshd", "-D", "-e", "-h", key}, -1, 0});
    return out;
  }
  // No key from the host (a VM without a work disk, or created by an older banger): the image's
  // own keys, made here on first boot when it has none.
  bool have_keys = false;
  if (DIR* d = ::opendir("/etc/ssh")) {
    while (dirent* e = ::readdir(d))
      if (std::strncmp(e->d_name, "ssh_host_", 9) == 0)
        have_keys = true;
    ::closedir(d);
  }
  if (!have_keys) {
    say("generating ssh host keys for this VM");
    if (run_and_wait({"/usr/bin/ssh-keygen", "-A"}) != 0)
      say("ssh-keygen -A failed; sshd will not start");
  }
  out.push_back({"sshd", {"/usr/sbin/sshd", "-D", "-e"}, -1, 0});
  return out;
}

void reap_all(std::vector<service>& svcs, bool stopping) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0)
      return;
    for (auto& s : svcs)
      if (s.pid == pid) {
        s.pid = -1;
        if (!stopping) {
          say(s.name + " exited (" +
              (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                   : "status " + std::to_string(WEXITSTATUS(status))) +
              "); restarting in 1 s");
          s.restart_at = ::time(nullptr) + 1;
        }
      }
  }
}

} // namespace banger::guest::init
