// See boot_snapshot.hpp.
#include "actors/vm/boot_snapshot.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/random.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <fmt/core.h>

#include "common/guest_protocol.hpp"
#include "common/process.hpp"
#include "common/sha256.hpp"

namespace banger::actors {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path boot_snapshot_dir(const host_env& h, const vm_state& s, const vmm::vm_spec& spec) {
  std::error_code ec;
  auto work_bytes = spec.work_disk.empty() ? 0 : fs::file_size(spec.work_disk, ec);
  auto key = sha256_hex(fmt::format("boot snapshot 2\nimage {} {}\nwork {}\n{}\n", s.image, s.image_version,
                                    ec ? 0 : work_bytes, h.driver->guest_shape(spec)));
  return version_dir(h.templates(), s.image, s.image_version) / ("boot-" + key.substr(0, 16));
}

expected<vmm::vmm_process> launch_restored(const host_env& h, const vm_state& s, const vm_paths& p, vmm::vm_spec spec) {
  auto dir = boot_snapshot_dir(h, s, spec);
  if (auto why = read_file(dir.string() + ".unsupported"); why)
    return make_error(errc::unavailable, *why);
  auto built =
    ensure_template(dir, [&](const fs::path& tmp) { return build_boot_snapshot(h, dir, p.overlay(), spec, tmp); });
  if (!built)
    return built.err();
  if (auto ok = sparse_copy(dir / "overlay.qcow2", p.overlay()); !ok)
    return ok.err();
  spec.await_settings = true; // the guest's command line is the template's
  spec.memory_file = dir / "ram";
  spec.incoming = true;
  auto proc = h.driver->launch(spec);
  if (!proc)
    return proc.err();
  auto fail = [&](error e) {
    kill_vmm(h, *proc);
    h.forget_agent(s.name);
    return e;
  };
  if (auto r = h.driver->restore(*proc, dir / "state"); !r) {
    // A snapshot this QEMU cannot load (after an upgrade, say) is dropped: the next first
    // start makes a new one. Renamed away first, so no start restores from it half-removed.
    auto stale = fs::path(dir.string() + ".stale-" + std::to_string(::getpid()) + "-" + s.id);
    std::error_code ec;
    fs::rename(dir, stale, ec);
    fs::remove_all(stale, ec);
    return fail(r.err());
  }
  // The guest resumes with the template's clock and random state: both are replaced first.
  std::string entropy(64, '\0');
  if (::getrandom(entropy.data(), entropy.size(), 0) != static_cast<ssize_t>(entropy.size()))
    return fail(make_error(errc::operation_failed, fmt::format("getrandom: {}", std::strerror(errno))));
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
  if (auto c = h.agent.configure(s.name, p.agent_socket(), vmm::restored_settings(spec), now.count(), entropy); !c)
    return fail(make_error(c.err().code, "configuring the restored guest: " + c.err().message));
  return *proc;
}

expected<void> build_boot_snapshot(const host_env& h, const fs::path& final, const fs::path& overlay, vmm::vm_spec t,
                                   const fs::path& tmp) {
  // The guest's memory is in it (the template's: no VM's data, but its processes' random
  // state until a restore reseeds): the daemon's user only.
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", tmp.string(), std::strerror(errno)));
  t.await_settings = true;
  t.memory_file = tmp / "ram";
  t.memory_shared = true;
  t.console_log = tmp / "console.log";
  t.root_disk = tmp / "overlay.qcow2";
  if (auto ok = sparse_copy(overlay, t.root_disk); !ok) // the VM's, never booted
    return ok;
  auto proc = h.driver->launch(t);
  if (!proc)
    return proc.err();
  auto stop = [&](error e) {
    kill_vmm(h, *proc);
    return e;
  };
  auto deadline = std::chrono::steady_clock::now() + h.cfg.agent_timeout;
  // The console as it grows: each pass reads only what was appended since the last.
  unique_fd con(::open(t.console_log.c_str(), O_RDONLY | O_CLOEXEC));
  std::string console;
  const std::string ready = "] " + std::string(guest_protocol::init_ready);
  for (;;) {
    if (!con)
      con = unique_fd(::open(t.console_log.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[4096];
    for (ssize_t n; con && (n = ::read(con.get(), buf, sizeof buf)) > 0;)
      console.append(buf, static_cast<std::size_t>(n));
    const bool at_init = console.find(guest_protocol::init_line_prefix) != std::string::npos;
    if (at_init && console.find(guest_protocol::init_awaiting_settings) != std::string::npos)
      break;
    if (at_init && console.find(ready) != std::string::npos) {
      // A banger-init from before boot snapshots: it booted on without waiting.
      std::string why = "the image's banger-init cannot wait for settings (it predates boot snapshots; "
                        "rebuild or pull the image again to get a newer one)";
      std::ofstream(final.string() + ".unsupported") << why;
      return stop(make_error(errc::unavailable, why));
    }
    const bool alive = h.driver->matches(*proc);
    if (!alive || std::chrono::steady_clock::now() >= deadline) {
      auto tail = console.size() > 2000 ? console.substr(console.size() - 2000) : console;
      return stop(make_error(errc::operation_failed,
                             fmt::format("the boot snapshot's template {} before its init waited for settings; "
                                         "its console:\n{}",
                                         alive ? "did not get" : "exited", tail)));
    }
    std::this_thread::sleep_for(5ms);
  }
  if (auto r = h.driver->save(*proc, tmp / "state"); !r)
    return stop(r.err());
  if (!h.driver->quit(*proc) || !h.driver->wait_exit(*proc, 10s))
    return stop(make_error(errc::operation_failed, "the boot snapshot's template did not quit"));
  return {};
}

} // namespace banger::actors
