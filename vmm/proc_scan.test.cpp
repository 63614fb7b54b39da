// The /proc scan for VMMs a daemon launched but never recorded, against a proc tree of the
// test's own: only a qemu-system process naming the VM's QMP socket is found.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "tests/support/proc.hpp"
#include "vmm/proc_scan.hpp"

using namespace banger;
namespace fs = std::filesystem;

namespace {
void process(const fs::path& proc, const std::string& pid, const std::string& cmdline) {
  fs::create_directories(proc / pid);
  std::ofstream(proc / pid / "cmdline", std::ios::binary) << cmdline;
}
} // namespace

BOOST_AUTO_TEST_SUITE(proc_scan)

BOOST_AUTO_TEST_CASE(only_a_qemu_naming_the_socket_is_found) {
  test::temp_dir d{"banger-proc"};
  using namespace std::string_literals;
  process(d.path, "101", "/usr/bin/qemu-system-x86_64\0-qmp\0unix:/run/vms/web/qmp.sock,server=on\0"s);
  process(d.path, "102", "/usr/bin/qemu-system-x86_64\0-qmp\0unix:/run/vms/db/qmp.sock,server=on\0"s);
  process(d.path, "103", "/bin/sh\0-c\0echo /run/vms/web/qmp.sock\0"s); // names it, but is no VMM
  process(d.path, "104", ""s);                                          // a kernel thread
  process(d.path, "self", "/usr/bin/qemu-system-x86_64\0/run/vms/web/qmp.sock\0"s);
  auto found = vmm::vmm_pids_naming("/run/vms/web/qmp.sock", d.path);
  BOOST_TEST(found == std::vector<int>{101}, boost::test_tools::per_element());
  BOOST_TEST(vmm::vmm_pids_naming("/run/vms/none/qmp.sock", d.path).empty());
  BOOST_TEST(vmm::vmm_pids_naming("/x", d.path / "missing").empty());
}

BOOST_AUTO_TEST_SUITE_END()
