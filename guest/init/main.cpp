// banger-init: PID 1 of banger guests (images may opt for their own init instead).
//   1. mounts proc, sys, dev, devpts, shm, run, tmp; sets the hostname (banger.hostname=, else
//      the ip= hostname), also on /etc/hosts' 127.0.1.1 line
//   2. starts banger-agent first (linked in: forked, not exec'd); it holds commands until step 5.
//      With banger.await (a boot snapshot's template) it then brings lo and eth0 up without an
//      address and waits: the host snapshots the guest there, and each VM restored from the
//      snapshot gets its hostname, banger.ip=, banger.mac= through the agent (configure), which
//      step 1's hostname and step 3 then use
//   3. brings networking up from banger.ip= (else ip=) with plain ioctls (lo, the device's
//      address and netmask, a default route) while a child mounts the work disk (banger.work=,
//      default /dev/vdb) at /root
//   4. starts sshd when the image has one, with the host key the host wrote into the work disk
//      (else the image's, generated on first boot when it has none)
//   5. creates its ready file; restarts sshd or the agent if either dies
//   6. reaps every zombie; on SIGUSR2/SIGTERM/SIGINT/SIGUSR1 or the ACPI power button (KEY_POWER
//      on /dev/input/event*) it stops everything, syncs, unmounts and powers off.
// The steps' code: mounts.cpp (1's mounts, 3's work disk), network.cpp (the hostname, 2's links
// without an address and eth0's MAC, 3's network), settings.cpp (2's wait for the host's
// settings), services.cpp (2, 4 and 5: starting, restarting and reaping), power.cpp (6's power
// button and power off); console.cpp writes the console lines. main() below runs the steps.
// Single-threaded: one poll loop over a signalfd and the input devices. Statically linked.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <string>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "common/guest_protocol.hpp"
#include "guest/init/cmdline.hpp"
#include "guest/init/console.hpp"
#include "guest/init/mounts.hpp"
#include "guest/init/network.hpp"
#include "guest/init/power.hpp"
#include "guest/init/services.hpp"
#include "guest/init/settings.hpp"

using namespace banger::guest;
using namespace banger::guest::init;

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--version") {
    std::printf("banger-init %s\n", BANGER_VERSION);
    return 0;
  }
  if (::getpid() != 1) {
    std::fprintf(stderr, "banger-init: must run as PID 1 (it is the guest's init)\n");
    return 1;
  }
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);

  mount_basics();
  int con = ::open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (con >= 0)
    console_fd = con;
  say("started");
  auto args = parse_cmdline(read_small("/proc/cmdline"));
  awaiting_settings = args.count("banger.await") != 0;
  if (!awaiting_settings)
    hostname(args);
  // The agent first, so it starts while eth0 and /root are set up; it runs no command before
  // ready_file exists (agent_options::ready_file).
  std::vector<service> svcs{{"banger-agent", {}, -1, 0, true}};
  svcs.front().pid = start(svcs.front());
  if (awaiting_settings) {
    // A boot snapshot's template: everything up to here is the same for every VM of its shape.
    // The host takes the snapshot once this line is on the console; each VM restored from it
    // resumes here, and its settings arrive through the agent (configure).
    link_up_without_identity();
    say(std::string(banger::guest_protocol::init_awaiting_settings));
    auto settings = await_settings(svcs.front().pid);
    for (auto& [k, v] : parse_cmdline(settings))
      args[k] = v;
    say("settings from the host: " + settings.substr(0, settings.find('\n')));
    hostname(args);
    set_mac(args);
  }
  // The work disk is mounted by a child while this process sets up the network: the mount
  // waits on the disk, the network keeps the CPU busy, and the mount is the whole system's.
  pid_t mounter = ::fork();
  if (mounter == 0) {
    mount_work(args, awaiting_settings);
    ::_exit(0);
  }
  network(args);
  if (mounter < 0)
    mount_work(args, awaiting_settings);
  else
    while (::waitpid(mounter, nullptr, 0) < 0 && errno == EINTR) {
    }

  sigset_t wanted;
  sigemptyset(&wanted);
  for (int s : {SIGCHLD, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGPWR})
    sigaddset(&wanted, s);
  int sfd = ::signalfd(-1, &wanted, SFD_CLOEXEC | SFD_NONBLOCK);
  for (auto& s : services()) { // sshd, once the work disk (holding its host key) is mounted
    s.pid = start(s);
    svcs.push_back(std::move(s));
  }
  if (int fd = ::open(ready_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); fd >= 0)
    ::close(fd);
  else
    say(std::string("creating ") + ready_file + ": " + errstr() + " (the agent will wait 30 s before commands)");
  auto buttons = open_power_buttons();
  say(std::string(banger::guest_protocol::init_ready) + std::to_string(svcs.size()) + " services, " +
      std::to_string(buttons.size()) + " input devices)");

  for (;;) {
    std::vector<pollfd> pfds{{sfd, POLLIN, 0}};
    for (int fd : buttons)
      pfds.push_back({fd, POLLIN, 0});
    ::poll(pfds.data(), pfds.size(), 500);
    if (pfds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD)
          reap_all(svcs, false);
        else
          power_off(svcs, std::string("signal ") + strsignal(static_cast<int>(si.ssi_signo)));
      }
    }
    for (std::size_t i = 1; i < pfds.size(); ++i) {
      if (!(pfds[i].revents & POLLIN))
        continue;
      input_event ev{};
      while (::read(pfds[i].fd, &ev, sizeof ev) == sizeof ev)
        if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1)
          power_off(svcs, "power button");
    }
    time_t now = ::time(nullptr);
    for (auto& s : svcs)
      if (s.pid < 0 && s.restart_at != 0 && now >= s.restart_at) {
        s.restart_at = 0;
        s.pid = start(s);
      }
  }
}
