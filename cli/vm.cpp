// The request/response vm commands (create, start, stop, restart, delete, list, show, set,
// prune, logs); see vm.hpp. Human output: a confirmation on stdout (for create, only the name,
// so `name=$(banger vm create)` works), stage lines "[vm create] overlay 0.03s" on stderr.
// With --json, one JSON document on stdout and no stage lines.
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/artifacts.hpp"
#include "cli/output.hpp"
#include "cli/vm_rpc.hpp"
#include "schema/fields_capnp.hpp"

namespace banger::cli {

using namespace vm_detail;
using namespace std::chrono_literals;

expected<std::optional<vm_info>> vm_detail::command_on(client& c, const std::string& name,
                                                       const actors::vm_command& cmd, const std::string& label,
                                                       bool quiet) {
  auto req = c.conn().daemon.vmCommandRequest();
  req.setName(name);
  capnp_fields::write_union(capnp::toDynamic(req.initCommand()), cmd);
  req.setProgress(kj::heap<stage_printer>(label, quiet));
  auto r = req.send().wait(c.conn().io.waitScope);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  if (!r.hasInfo())
    return std::optional<vm_info>{};
  return std::optional<vm_info>{to_vm_info(r.getInfo())};
}

namespace {

/// Prints a VM after a lifecycle command: JSON, or `line` on stdout.
int print_done(const output_opts& o, const vm_info& v, const std::string& line) {
  if (o.json)
    std::cout << vm_json(v) << "\n";
  else
    std::cout << line << "\n";
  return 0;
}

std::string running_line(const char* verb, const vm_info& v, double secs) {
  return fmt::format("{} {} in {:.1f}s{}", verb, v.name, secs, v.ip.empty() ? "" : fmt::format(" (ip {})", v.ip));
}

/// A command whose answer is the VM (start, stop, kill, configure).
expected<vm_info> vm_after(client& c, const output_opts& o, const std::string& name, const actors::vm_command& cmd,
                           const std::string& label) {
  auto r = command_on(c, name, cmd, label, o.json);
  if (!r)
    return r.err();
  if (!*r)
    return make_error(errc::internal, fmt::format("bangerd answered {} on VM {} without the VM", label, name));
  return **r;
}

expected<vm_info> start_on(client& c, const dirs& d, const output_opts& o, const std::string& name,
                           const std::string& label) {
  auto v = vm_after(c, o, name, actors::vm_cmd::start{}, label);
  if (!v)
    return v;
  // Every start the CLI makes syncs the host setup (a prepare into the stopped VM did not).
  if (auto synced = sync_home(c, d, name, v->workspace.host_path, label, o.json); !synced)
    return synced.err();
  return v;
}

expected<vm_info> stop_on(client& c, const output_opts& o, const std::string& name, bool kill,
                          const std::string& label) {
  return kill ? vm_after(c, o, name, actors::vm_cmd::kill{}, label)
              : vm_after(c, o, name, actors::vm_cmd::stop{}, label);
}

expected<void> delete_on(client& c, const output_opts& o, const std::string& name, bool force,
                         const std::string& label) {
  auto r = force ? command_on(c, name, actors::vm_cmd::remove_force{}, label, o.json)
                 : command_on(c, name, actors::vm_cmd::remove{}, label, o.json);
  if (!r)
    return r.err();
  return {};
}

expected<std::vector<vm_info>> list_on(client& c) {
  auto r = c.conn().daemon.vmListRequest().send().wait(c.conn().io.waitScope);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  std::vector<vm_info> out;
  for (auto i : r.getItems())
    out.push_back(to_vm_info(i));
  return out;
}

} // namespace

expected<vm_info> vm_detail::show_on(client& c, const std::string& name) {
  auto req = c.conn().daemon.vmShowRequest();
  req.setName(name);
  auto r = req.send().wait(c.conn().io.waitScope);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  return to_vm_info(r.getInfo());
}

int cmd_vm_create(const dirs& d, const output_opts& o, const vm_create_opts& c) {
  if (!c.name.empty())
    if (auto ok = validate_vm_name(c.name); !ok)
      return report(ok.err(), o);
  // Read before the VM exists, so a config error or an unreadable file makes nothing.
  auto home = plan_home_files(d, {}, "vm create");
  if (!home)
    return report(home.err(), o);
  return with_daemon(d, o, [&](client& cl) {
    auto image = image_for_vm(cl, d, c.image, "vm create", o.json);
    if (!image)
      return report(image.err(), o);
    auto req = cl.conn().daemon.vmCreateRequest();
    auto s = req.initSpec();
    s.setName(c.name);
    s.setImage(*image);
    s.setKernel(c.kernel);
    s.setVcpus(c.vcpus);
    s.setMemoryMib(c.memory_mib);
    s.setDiskMib(c.disk_mib);
    req.setNoStart(c.no_start);
    req.setProgress(kj::heap<stage_printer>("vm create", o.json));
    auto t0 = std::chrono::steady_clock::now();
    auto r = req.send().wait(cl.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    auto v = to_vm_info(r.getInfo());
    if (!c.no_start)
      if (auto synced = sync_home_files(cl, v.name, *home, "vm create", o.json); !synced)
        return report(synced.err(), o);
    if (o.json) {
      std::cout << vm_json(v) << "\n";
      return 0;
    }
    std::cerr << fmt::format("[vm create] {} in {:.1f}s{}\n", c.no_start ? "created" : "ready", seconds_since(t0),
                             c.no_start ? fmt::format(" (stopped; `banger vm start {}`)", v.name) : "");
    std::cout << v.name << "\n";
    return 0;
  });
}

int cmd_vm_start(const dirs& d, const output_opts& o, const std::string& name) {
  return with_daemon(d, o, [&](client& c) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = start_on(c, d, o, name, "vm start");
    if (!v)
      return report(v.err(), o);
    return print_done(o, *v, running_line("started", *v, seconds_since(t0)));
  });
}

int cmd_vm_stop(const dirs& d, const output_opts& o, const std::string& name, bool kill) {
  return with_daemon(d, o, [&](client& c) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = stop_on(c, o, name, kill, kill ? "vm kill" : "vm stop");
    if (!v)
      return report(v.err(), o);
    return print_done(o, *v, fmt::format("{} {} in {:.1f}s", kill ? "killed" : "stopped", name, seconds_since(t0)));
  });
}

int cmd_vm_restart(const dirs& d, const output_opts& o, const std::string& name) {
  return with_daemon(d, o, [&](client& c) {
    auto t0 = std::chrono::steady_clock::now();
    // A stopped VM just starts: restart means "be running afresh".
    if (auto v = stop_on(c, o, name, false, "vm restart"); !v && v.err().code != errc::not_running)
      return report(v.err(), o);
    auto v = start_on(c, d, o, name, "vm restart");
    if (!v)
      return report(v.err(), o);
    return print_done(o, *v, running_line("restarted", *v, seconds_since(t0)));
  });
}

int cmd_vm_command(const dirs& d, const output_opts& o, const std::string& name, const actors::vm_command& cmd,
                   const std::string& label, const std::string& done) {
  return with_daemon(d, o, [&](client& c) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = vm_after(c, o, name, cmd, label);
    if (!v)
      return report(v.err(), o);
    return print_done(o, *v,
                      fmt::format(fmt::runtime(done), fmt::arg("name", name), fmt::arg("secs", seconds_since(t0))));
  });
}

int cmd_vm_delete(const dirs& d, const output_opts& o, const std::string& name, bool force) {
  return with_daemon(d, o, [&](client& c) {
    auto t0 = std::chrono::steady_clock::now();
    if (auto r = delete_on(c, o, name, force, "vm delete"); !r)
      return report(r.err(), o);
    if (o.json)
      std::cout << nlohmann::json{{"deleted", name}}.dump() << "\n";
    else
      fmt::print("deleted {} in {:.1f}s\n", name, seconds_since(t0));
    return 0;
  });
}

int cmd_vm_list(const dirs& d, const output_opts& o, bool all) {
  return with_daemon(d, o, [&](client& c) {
    auto vms = list_on(c);
    if (!vms)
      return report(vms.err(), o);
    std::vector<vm_info> shown;
    std::size_t hidden = 0;
    for (auto& v : *vms) {
      if (all || v.state != "stopped")
        shown.push_back(std::move(v));
      else
        ++hidden;
    }
    if (o.json) {
      std::cout << vm_list_json(shown) << "\n";
      return 0;
    }
    if (shown.empty()) {
      if (hidden > 0)
        fmt::print("no running VMs; {} stopped (`banger vm list -a` lists them)\n", hidden);
      else
        fmt::print("no VMs yet; create one with `banger vm create` or try `banger vm run --rm -- uname -a`\n");
      return 0;
    }
    std::cout << vm_table(shown, wall_now_ns(), use_colour(1));
    return 0;
  });
}

int cmd_vm_show(const dirs& d, const output_opts& o, const std::string& name) {
  return with_daemon(d, o, [&](client& c) {
    auto v = show_on(c, name);
    if (!v)
      return report(v.err(), o);
    if (o.json)
      std::cout << vm_json(*v) << "\n";
    else
      std::cout << vm_show_text(*v, wall_now_ns());
    return 0;
  });
}

int cmd_vm_set(const dirs& d, const output_opts& o, const std::string& name, std::uint32_t vcpus,
               std::uint32_t memory_mib) {
  if (vcpus == 0 && memory_mib == 0)
    return report(make_error(errc::bad_request, "nothing to change: pass --vcpu N and/or --memory MIB"), o);
  return with_daemon(d, o, [&](client& c) {
    auto r = vm_after(c, o, name, actors::vm_cmd::configure{vcpus, memory_mib}, "vm set");
    if (!r)
      return report(r.err(), o);
    const auto& v = *r;
    return print_done(o, v,
                      fmt::format("{}: {} vCPU{}, {} MiB (takes effect at the next start)", v.name, v.vcpus,
                                  v.vcpus == 1 ? "" : "s", v.memory_mib));
  });
}

int cmd_vm_prune(const dirs& d, const output_opts& o, bool force) {
  return with_daemon(d, o, [&](client& c) {
    auto vms = list_on(c);
    if (!vms)
      return report(vms.err(), o);
    std::vector<std::string> victims;
    for (const auto& v : *vms)
      if (v.state == "stopped")
        victims.push_back(v.name);
    if (victims.empty()) {
      if (o.json)
        std::cout << nlohmann::json{{"deleted", nlohmann::json::array()}}.dump() << "\n";
      else
        fmt::print("no stopped VMs\n");
      return 0;
    }
    if (!force) {
      if (::isatty(STDIN_FILENO) != 1)
        return report(make_error(errc::bad_request,
                                 fmt::format("would delete {} stopped VM{}; stdin is not a terminal to ask, so pass -f",
                                             victims.size(), victims.size() == 1 ? "" : "s")),
                      o);
      std::cerr << "stopped VMs:\n";
      for (const auto& n : victims)
        std::cerr << "  " << n << "\n";
      std::cerr << fmt::format("Delete {} VM{}? [y/N] ", victims.size(), victims.size() == 1 ? "" : "s") << std::flush;
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y" && answer != "yes") {
        std::cerr << "nothing deleted\n";
        return 0;
      }
    }
    std::vector<std::string> deleted;
    int rc = 0;
    for (const auto& n : victims) {
      if (auto r = delete_on(c, o, n, false, "vm prune"); !r) {
        rc = report(r.err(), o);
        continue;
      }
      deleted.push_back(n);
      if (!o.json)
        fmt::print("deleted {}\n", n);
    }
    if (o.json)
      std::cout << nlohmann::json{{"deleted", deleted}}.dump() << "\n";
    return rc;
  });
}

namespace {

/// Bytes of `path` from `offset` on; empty when the file is missing or shorter.
std::string read_from(const std::string& path, std::uint64_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

} // namespace

int cmd_vm_logs(const dirs& d, const std::string& name, bool follow, std::size_t lines) {
  output_opts o;
  return with_daemon(d, o, [&](client& c) {
    auto v = show_on(c, name);
    if (!v)
      return report(v.err(), o);
    std::string path = v->console_log;
    if (path.empty())
      return report(make_error(errc::not_found, fmt::format("vm {} has no console log yet; start it with "
                                                            "`banger vm start {}`",
                                                            name, name)),
                    o);
    std::uint64_t offset = file_size_or_zero(path);
    std::cout << last_lines(read_from(path, 0).substr(0, offset), lines) << std::flush;
    if (!follow)
      return 0;
    auto last_check = std::chrono::steady_clock::now();
    for (;;) {
      std::this_thread::sleep_for(200ms);
      std::uint64_t size = file_size_or_zero(path);
      if (size < offset) // recreated at a restart: start over
        offset = 0;
      if (size > offset) {
        auto chunk = read_from(path, offset);
        offset += chunk.size();
        std::cout << chunk << std::flush;
      }
      if (std::chrono::steady_clock::now() - last_check > 1s) {
        last_check = std::chrono::steady_clock::now();
        if (auto still = show_on(c, name); !still) {
          if (still.err().code == errc::not_found) {
            std::cerr << fmt::format("[vm logs] {} was deleted\n", name);
            return 0;
          }
          return report(still.err(), o);
        }
      }
    }
  });
}

} // namespace banger::cli
