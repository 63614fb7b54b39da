// See host.hpp.
#include "actors/vm/host.hpp"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <thread>

#include <fmt/core.h>

#include "actors/vm/disks.hpp"
#include "common/process.hpp"
#include "common/sha256.hpp"

namespace banger::actors {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

vm_paths paths_of(const host_config& c, const std::string& vm) {
  return {c.state / "vms" / vm, c.runtime / "vms" / vm};
}

std::string tap_of(const vm_state& s) { return "bgt" + s.id; }

std::optional<vmm::vmm_process> vmm_of(const host_config& c, const vm_state& s) {
  const auto* r = s.find(resource::vmm);
  if (!r || !r->acquired)
    return std::nullopt;
  vmm::vmm_process p;
  try {
    p.pid = std::stoi(r->id);
  } catch (...) {
    return std::nullopt;
  }
  auto d = parse_vmm_detail(r->detail);
  p.start_time = d.start_time;
  p.cmdline_sha256 = d.cmdline_sha256;
  auto vp = paths_of(c, s.name);
  p.qmp_socket = vp.qmp_socket();
  p.agent_socket = vp.agent_socket();
  return p;
}

namespace {

expected<void> remove_file(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("remove {}: {}", p.string(), ec.message()));
  return {};
}

expected<void> make_dir(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", p.string(), ec.message()));
  fs::permissions(p, fs::perms::owner_all, ec);
  return {};
}

net_reply ask(const net_call& net, net_request rq) { return net(std::move(rq)); }

/// Rewrites banger's known_hosts with `alias`'s line replaced (or removed when `key` is empty),
/// under an flock so concurrent starts do not lose each other's lines.
void update_known_hosts(const fs::path& file, const std::string& alias, const std::string& key) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  unique_fd lock(::open((file.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock)
    ::flock(lock.get(), LOCK_EX);
  std::string out;
  if (std::ifstream in(file); in) {
    std::string line;
    while (std::getline(in, line))
      if (!line.empty() && line.rfind(alias + " ", 0) != 0)
        out += line + "\n";
  }
  if (!key.empty())
    out += alias + " " + key + "\n";
  auto tmp = file.string() + ".new";
  {
    std::ofstream o(tmp, std::ios::trunc);
    o << out;
  }
  fs::rename(tmp, file, ec);
}

/// Processes whose command line names `qmp` (a VM's QMP socket path): a VMM launched for that
/// VM whose pid never reached the journal (the daemon died between launch and record).
std::vector<int> vmm_pids_naming(const fs::path& qmp) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto cmdline = read_file(e.path() / "cmdline");
    if (!cmdline || cmdline->empty())
      continue;
    std::string_view args(*cmdline);
    std::string_view argv0 = args.substr(0, args.find('\0'));
    if (argv0.find("qemu-system") == std::string_view::npos)
      continue;
    if (args.find(qmp.string()) != std::string_view::npos)
      out.push_back(std::stoi(name));
  }
  return out;
}

class real_host final : public vm_host {
public:
  real_host(host_config cfg, std::shared_ptr<vmm::driver> driver, net_call net, agent_access agent)
    : cfg_(std::move(cfg)), driver_(std::move(driver)), net_(std::move(net)), agent_(std::move(agent)) {}

  bool wants(const vm_state&, std::string_view kind) override {
    if (kind == resource::ip || kind == resource::tap)
      return cfg_.network;
    if (kind == resource::nat)
      return cfg_.network && cfg_.nat;
    return true;
  }

  std::string planned_id(const vm_state& s, std::string_view kind) override {
    auto p = paths_of(cfg_, s.name);
    if (kind == resource::overlay)
      return p.overlay().string();
    if (kind == resource::work_disk)
      return p.work_disk().string();
    if (kind == resource::tap)
      return tap_of(s);
    if (kind == resource::sockets)
      return p.runtime_dir.string();
    if (kind == resource::nat)
      return s.ip();
    return {}; // ip, vmm: known once made
  }

  expected<step_result> acquire(const vm_state& s, std::string_view kind, const std::string& op) override {
    crash_point("before:", kind);
    auto r = make(s, kind, op);
    if (r)
      crash_point("after:", kind);
    return r;
  }

  expected<step_result> make(const vm_state& s, std::string_view kind, const std::string& op) {
    auto p = paths_of(cfg_, s.name);
    if (kind == resource::overlay)
      return make_overlay(s, p);
    if (kind == resource::work_disk)
      return make_work_disk(s, p);
    if (kind == resource::ip) {
      auto r = ask(net_, {net_request::op::lease, s.name, {}, {}, 0, 0, op});
      if (!r.ok)
        return r.err;
      return step_result{r.ip, cfg_.bridge};
    }
    if (kind == resource::tap) {
      auto r = ask(net_, {net_request::op::create_tap, {}, tap_of(s), {}, 0, 0, op});
      if (!r.ok)
        return r.err;
      return step_result{tap_of(s), cfg_.bridge};
    }
    if (kind == resource::sockets) {
      std::error_code ec;
      fs::remove_all(p.runtime_dir, ec); // stale sockets of a VMM that is gone
      if (auto ok = make_dir(p.runtime_dir); !ok)
        return ok.err();
      return step_result{p.runtime_dir.string(), {}};
    }
    if (kind == resource::nat) {
      auto r = ask(net_, {net_request::op::add_nat, {}, {}, s.ip(), 0, 0, op});
      if (!r.ok)
        return r.err;
      return step_result{s.ip(), cfg_.bridge};
    }
    if (kind == resource::vmm)
      return launch(s, p);
    return make_error(errc::internal, fmt::format("unknown resource kind {}", kind));
  }

  expected<void> release(const vm_state& s, const vm_resource& r, const std::string& op) override {
    crash_point("release:", r.kind);
    auto p = paths_of(cfg_, s.name);
    if (r.kind == resource::overlay || r.kind == resource::work_disk)
      return remove_file(r.id.empty() ? (r.kind == resource::overlay ? p.overlay() : p.work_disk()) : fs::path(r.id));
    if (r.kind == resource::ip) {
      // An intent without an id: the lease may have been made; release whatever the VM holds.
      return from(ask(net_, {net_request::op::release_lease, s.name, {}, r.id, 0, 0, op}));
    }
    if (r.kind == resource::tap)
      return from(ask(net_, {net_request::op::delete_tap, {}, r.id.empty() ? tap_of(s) : r.id, {}, 0, 0, op}));
    if (r.kind == resource::nat) {
      if (r.id.empty())
        return {};
      return from(ask(net_, {net_request::op::clear_nat, {}, {}, r.id, 0, 0, op}));
    }
    if (r.kind == resource::sockets) {
      std::error_code ec;
      fs::remove_all(p.runtime_dir, ec);
      if (ec)
        return make_error(errc::operation_failed, fmt::format("remove {}: {}", p.runtime_dir.string(), ec.message()));
      return {};
    }
    if (r.kind == resource::vmm) {
      if (agent_.forget)
        agent_.forget(s.name);
      auto proc = vmm_of(cfg_, s);
      if (!proc) {
        // Intended, never recorded as launched: a failed launch cleans up after itself, but a
        // daemon that died between the launch and its record left the VMM running. It is the
        // one naming this VM's QMP socket.
        for (int pid : vmm_pids_naming(paths_of(cfg_, s.name).qmp_socket())) {
          ::kill(pid, SIGKILL);
          for (int i = 0; i < 100 && process_alive(pid); ++i)
            std::this_thread::sleep_for(50ms);
        }
        return {};
      }
      if (driver_->matches(*proc)) {
        (void)driver_->kill(*proc, SIGKILL);
        if (!driver_->wait_exit(*proc, 10s))
          return make_error(errc::operation_failed, fmt::format("VMM pid {} did not exit after SIGKILL", proc->pid));
      }
      return {};
    }
    return make_error(errc::internal, fmt::format("unknown resource kind {}", r.kind));
  }

  expected<void> wait_agent(const vm_state& s, const std::string&) override {
    auto p = paths_of(cfg_, s.name);
    auto proc = vmm_of(cfg_, s);
    auto r = agent_.wait_ready(s.name, p.agent_socket(), cfg_.agent_timeout);
    if (!r) {
      error e = r.err();
      if (proc && !driver_->matches(*proc))
        e.message += "; the VMM exited (see `banger vm logs " + s.name + "`)";
      else
        e.message += "; the guest's console is in `banger vm logs " + s.name + "`";
      return e;
    }
    crash_point("after:", "agent");
    return {};
  }

  expected<void> post_start(const vm_state& s, const std::string& op) override {
    auto r = post_start_work(s, op);
    crash_point("after:", "post_start");
    return r;
  }

  std::string shutdown(const vm_state& s, bool kill, const std::string&) override {
    auto proc = vmm_of(cfg_, s);
    auto done = [&](std::string how) {
      if (agent_.forget)
        agent_.forget(s.name);
      return how;
    };
    if (!proc || !driver_->matches(*proc))
      return done(fmt::format("the VMM exited unexpectedly (see `banger vm logs {}`)", s.name));
    if (kill) {
      (void)driver_->kill(*proc, SIGKILL);
      driver_->wait_exit(*proc, 10s);
      return done("killed");
    }
    if (agent_.poweroff && agent_.poweroff(s.name, paths_of(cfg_, s.name).agent_socket()) &&
        driver_->wait_exit(*proc, cfg_.stop_timeout))
      return done("stopped");
    if (driver_->powerdown(*proc) && driver_->wait_exit(*proc, cfg_.stop_timeout))
      return done("stopped (ACPI power button)");
    if (driver_->quit(*proc) && driver_->wait_exit(*proc, 5s))
      return done("stopped (QMP quit after the guest did not power off)");
    (void)driver_->kill(*proc, SIGKILL);
    driver_->wait_exit(*proc, 10s);
    return done("killed (did not stop in time)");
  }

  std::string adoption_refused(const vm_state& s) override {
    const auto* r = s.find(resource::vmm);
    if (!r || !r->acquired)
      return "no VMM is on record";
    auto recorded = recorded_boot_id(*r);
    if (!recorded.empty() && !cfg_.boot_id.empty() && recorded != cfg_.boot_id)
      return fmt::format("the host rebooted since it started (boot id {} then, {} now)", recorded, cfg_.boot_id);
    if (!vmm_alive(s))
      return fmt::format("its VMM (pid {}) was gone when bangerd started", r->id);
    return {};
  }

  bool vmm_alive(const vm_state& s) override {
    auto proc = vmm_of(cfg_, s);
    return !proc || driver_->matches(*proc);
  }

  void remove_dirs(const vm_state& s) override {
    auto p = paths_of(cfg_, s.name);
    std::error_code ec;
    fs::remove_all(p.state_dir, ec);
    fs::remove_all(p.runtime_dir, ec);
    if (!cfg_.known_hosts.empty() && fs::exists(cfg_.known_hosts, ec))
      update_known_hosts(cfg_.known_hosts, s.name + ".vm", "");
  }

private:
  /// post_start's work (the crash point follows it).
  expected<void> post_start_work(const vm_state& s, const std::string&) {
    // The guest's own ssh host key (generated on its first boot) into banger's known_hosts.
    if (!agent_.read_file || cfg_.known_hosts.empty())
      return {};
    auto socket = paths_of(cfg_, s.name).agent_socket();
    auto key = agent_.read_file(s.name, socket, "/etc/ssh/ssh_host_ed25519_key.pub");
    if (!key)
      return {}; // no sshd in this image: `vm ssh` will say so
    std::string k = *key;
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r'))
      k.pop_back();
    // "ssh-ed25519 AAAA... root@host": keep type and key.
    std::istringstream in(k);
    std::string type, b64;
    in >> type >> b64;
    if (!type.empty() && !b64.empty())
      update_known_hosts(cfg_.known_hosts, s.name + ".vm", type + " " + b64);
    // The image has sshd: ready means `vm ssh` works, so wait for it to listen (it starts
    // beside the agent and takes a few seconds under TCG).
    if (agent_.listening) {
      auto deadline = std::chrono::steady_clock::now() + cfg_.agent_timeout;
      while (std::chrono::steady_clock::now() < deadline) {
        auto l = agent_.listening(s.name, socket, 22);
        if (!l)
          return make_error(l.err().code, "waiting for sshd: " + l.err().message);
        if (*l)
          return {};
        std::this_thread::sleep_for(200ms);
      }
      return make_error(errc::unavailable, fmt::format("sshd in VM {} did not start listening on port 22; see "
                                                       "`banger vm logs {}`",
                                                       s.name, s.name));
    }
    return {};
  }

  /// Test-only sync point (the crash tests): when BANGER_TEST_CRASH_AT names this point
  /// ("before:tap", "after:vmm", "after:agent", "after:post_start", "release:tap", ...), the
  /// daemon SIGKILLs itself here, so a test can stop it at an exact step of a start, a stop or
  /// a delete. Unset in normal use.
  static void crash_point(std::string_view when, std::string_view kind) {
    const char* at = std::getenv("BANGER_TEST_CRASH_AT");
    if (at && std::string(when) + std::string(kind) == at)
      ::kill(::getpid(), SIGKILL);
  }

  static expected<void> from(const net_reply& r) {
    if (r.ok)
      return {};
    return r.err;
  }

  fs::path image_dir(const vm_state& s) const { return cfg_.images / s.image / s.image_version; }
  fs::path kernel_dir(const vm_state& s) const { return cfg_.kernels / s.kernel / s.kernel_version; }

  disk_templates templates() const {
    return {cfg_.templates.empty() ? cfg_.state / "cache" / "vm-templates" : cfg_.templates, cfg_.images};
  }

  expected<step_result> make_overlay(const vm_state& s, const vm_paths& p) {
    auto base = image_dir(s) / "rootfs.ext4";
    if (!fs::exists(base))
      return make_error(errc::not_found,
                        fmt::format("image {} version {} has no {}: it was removed; create the VM again from a "
                                    "current image",
                                    s.image, s.image_version, base.string()));
    if (auto ok = make_dir(p.state_dir); !ok)
      return ok.err();
    if (auto ok = actors::make_overlay(templates(), s.image, s.image_version, p.overlay()); !ok)
      return ok.err();
    // Never booted: its first start may restore a boot snapshot (launch).
    if (unique_fd fd(::open(fresh_marker(p).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)); !fd)
      return make_error(errc::operation_failed,
                        fmt::format("create {}: {}", fresh_marker(p).string(), std::strerror(errno)));
    return step_result{p.overlay().string(), s.image_version};
  }

  expected<step_result> make_work_disk(const vm_state& s, const vm_paths& p) {
    auto seed = image_dir(s) / "work-seed.ext4";
    if (!fs::exists(seed))
      return make_error(errc::not_found, fmt::format("image {} has no work seed {}", s.image, seed.string()));
    if (auto ok = make_dir(p.state_dir); !ok)
      return ok.err();
    if (auto ok =
          actors::make_work_disk(templates(), s.image, s.image_version, s.disk_mib, cfg_.ssh_public_key, p.work_disk());
        !ok)
      return ok.err();
    return step_result{p.work_disk().string(), fmt::format("{} MiB", s.disk_mib)};
  }

  expected<step_result> launch(const vm_state& s, const vm_paths& p) {
    vmm::vm_spec spec;
    spec.name = s.name;
    spec.dir = p.runtime_dir;
    spec.console_log = p.console_log();
    auto kdir = kernel_dir(s);
    spec.kernel = fs::exists(kdir / "vmlinux") ? kdir / "vmlinux" : kdir / "bzImage";
    if (fs::exists(kdir / "initrd.img"))
      spec.initrd = kdir / "initrd.img";
    if (!fs::exists(spec.kernel))
      return make_error(errc::not_found,
                        fmt::format("kernel {} version {} has no vmlinux or bzImage in {}: it was removed; import "
                                    "it again",
                                    s.kernel, s.kernel_version, kdir.string()));
    spec.root_disk = p.overlay();
    spec.work_disk = p.work_disk();
    spec.vcpus = s.vcpus;
    spec.memory_mib = s.memory_mib;
    if (cfg_.network) {
      spec.tap = tap_of(s);
      spec.ip_cidr = fmt::format("{}/{}", s.ip(), cfg_.net.prefix);
      spec.gateway = format_ipv4(cfg_.net.gateway());
    }
    // A VM's first start resumes a booted guest of its shape when it can; the marker goes
    // first, so that whatever happens next, later starts boot.
    std::error_code ec;
    if (fs::remove(fresh_marker(p), ec) && cfg_.boot_snapshots && agent_.configure &&
        spec.init.ends_with("/banger-init")) {
      auto restored = launch_restored(s, p, spec);
      if (restored)
        return restored;
      console_note(p, fmt::format("boot snapshot not used: {}; booting instead", restored.err().message));
      // The overlay may be the snapshot's, run for a moment: boot from a clean one.
      if (auto ok = actors::make_overlay(templates(), s.image, s.image_version, p.overlay()); !ok)
        return ok.err();
    }
    auto proc = driver_->launch(spec);
    if (!proc)
      return proc.err();
    return step_result{std::to_string(proc->pid),
                       format_vmm_detail({proc->start_time, proc->cmdline_sha256, cfg_.boot_id})};
  }

  static fs::path fresh_marker(const vm_paths& p) { return p.state_dir / "fresh"; }

  /// A VMM of a start that is being abandoned: SIGKILL, then reaped.
  void kill_vmm(const vmm::vmm_process& proc) {
    (void)driver_->kill(proc, SIGKILL);
    driver_->wait_exit(proc, 10s);
  }

  /// A line of banger's own in the VM's console log (`vm logs` shows it).
  static void console_note(const vm_paths& p, const std::string& line) {
    std::ofstream(p.console_log(), std::ios::app) << "banger: " << line << "\n";
  }

  /// The boot snapshot `spec`'s VM can resume, in the image version's template dir: named by
  /// everything that shapes the guest up to where the template waits (the driver's part of it
  /// is guest_shape), and nothing of one VM's.
  fs::path boot_snapshot_dir(const vm_state& s, const vmm::vm_spec& spec) const {
    std::error_code ec;
    auto work_bytes = spec.work_disk.empty() ? 0 : fs::file_size(spec.work_disk, ec);
    auto key = sha256_hex(fmt::format("boot snapshot 2\nimage {} {}\nwork {}\n{}\n", s.image, s.image_version,
                                      ec ? 0 : work_bytes, driver_->guest_shape(spec)));
    return version_dir(templates(), s.image, s.image_version) / ("boot-" + key.substr(0, 16));
  }

  /// Launches the VM from its shape's boot snapshot (made first when missing), resumes it and
  /// hands the guest its settings. On failure nothing of the attempt runs any more.
  expected<step_result> launch_restored(const vm_state& s, const vm_paths& p, vmm::vm_spec spec) {
    auto dir = boot_snapshot_dir(s, spec);
    if (auto why = read_file(dir.string() + ".unsupported"); why)
      return make_error(errc::unavailable, *why);
    auto built = ensure_template(dir, [&](const fs::path& tmp) { return build_boot_snapshot(dir, p, spec, tmp); });
    if (!built)
      return built.err();
    if (auto ok = sparse_copy(dir / "overlay.qcow2", p.overlay()); !ok)
      return ok.err();
    spec.await_settings = true; // the guest's command line is the template's
    spec.memory_file = dir / "ram";
    spec.incoming = true;
    auto proc = driver_->launch(spec);
    if (!proc)
      return proc.err();
    auto fail = [&](error e) {
      kill_vmm(*proc);
      if (agent_.forget)
        agent_.forget(s.name);
      return e;
    };
    if (auto r = driver_->restore(*proc, dir / "state"); !r) {
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
    auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
    if (auto c = agent_.configure(s.name, p.agent_socket(), vmm::restored_settings(spec), now.count(), entropy); !c)
      return fail(make_error(c.err().code, "configuring the restored guest: " + c.err().message));
    return step_result{std::to_string(proc->pid),
                       format_vmm_detail({proc->start_time, proc->cmdline_sha256, cfg_.boot_id})};
  }

  /// Boots the template of `final` into `tmp` (ensure_template renames it into place): the VM's
  /// own disks and tap, shared RAM in tmp/ram, banger.await on the command line. Once its init
  /// says it waits for the host's settings, the guest is paused, its device state written to
  /// tmp/state and the VMM quit; tmp/overlay.qcow2 is then the disk the saved guest has seen.
  expected<void> build_boot_snapshot(const fs::path& final, const vm_paths& p, vmm::vm_spec t, const fs::path& tmp) {
    // The guest's memory is in it (the template's: no VM's data, but its processes' random
    // state until a restore reseeds): the daemon's user only.
    if (::mkdir(tmp.c_str(), 0700) != 0)
      return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", tmp.string(), std::strerror(errno)));
    t.await_settings = true;
    t.memory_file = tmp / "ram";
    t.memory_shared = true;
    t.console_log = tmp / "console.log";
    t.root_disk = tmp / "overlay.qcow2";
    if (auto ok = sparse_copy(p.overlay(), t.root_disk); !ok) // the VM's, never booted
      return ok;
    auto proc = driver_->launch(t);
    if (!proc)
      return proc.err();
    auto stop = [&](error e) {
      kill_vmm(*proc);
      return e;
    };
    auto deadline = std::chrono::steady_clock::now() + cfg_.agent_timeout;
    // The console as it grows: each pass reads only what was appended since the last.
    unique_fd con(::open(t.console_log.c_str(), O_RDONLY | O_CLOEXEC));
    std::string console;
    for (;;) {
      char buf[4096];
      for (ssize_t n; con && (n = ::read(con.get(), buf, sizeof buf)) > 0;)
        console.append(buf, static_cast<std::size_t>(n));
      const bool at_init = console.find("banger-init: [") != std::string::npos;
      if (at_init && console.find("waiting for the host's settings") != std::string::npos)
        break;
      if (at_init && console.find("] ready (") != std::string::npos) {
        // A banger-init from before boot snapshots: it booted on without waiting.
        std::string why = "the image's banger-init cannot wait for settings (it predates boot snapshots; "
                          "rebuild or pull the image again to get a newer one)";
        std::ofstream(final.string() + ".unsupported") << why;
        return stop(make_error(errc::unavailable, why));
      }
      const bool alive = driver_->matches(*proc);
      if (!alive || std::chrono::steady_clock::now() >= deadline) {
        auto tail = console.size() > 2000 ? console.substr(console.size() - 2000) : console;
        return stop(make_error(errc::operation_failed,
                               fmt::format("the boot snapshot's template {} before its init waited for settings; "
                                           "its console:\n{}",
                                           alive ? "did not get" : "exited", tail)));
      }
      std::this_thread::sleep_for(5ms);
    }
    if (auto r = driver_->save(*proc, tmp / "state"); !r)
      return stop(r.err());
    if (!driver_->quit(*proc) || !driver_->wait_exit(*proc, 10s))
      return stop(make_error(errc::operation_failed, "the boot snapshot's template did not quit"));
    return {};
  }

  host_config cfg_;
  std::shared_ptr<vmm::driver> driver_;
  net_call net_;
  agent_access agent_;
};

} // namespace

std::unique_ptr<vm_host> make_host(host_config cfg, std::shared_ptr<vmm::driver> driver, net_call net,
                                   agent_access agent) {
  return std::make_unique<real_host>(std::move(cfg), std::move(driver), std::move(net), std::move(agent));
}

} // namespace banger::actors
