// See proc_scan.hpp.
#include "vmm/proc_scan.hpp"

#include <string>

#include "common/process.hpp"

namespace banger::vmm {

namespace fs = std::filesystem;

std::vector<int> vmm_pids_naming(const fs::path& path, const fs::path& proc) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(proc, ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto cmdline = read_file(e.path() / "cmdline");
    if (!cmdline || cmdline->empty())
      continue;
    std::string_view args(*cmdline);
    std::string_view argv0 = args.substr(0, args.find('\0'));
    if (argv0.find("qemu-system") == std::string_view::npos)
      continue;
    if (args.find(path.string()) != std::string_view::npos)
      out.push_back(std::stoi(name));
  }
  return out;
}

} // namespace banger::vmm
