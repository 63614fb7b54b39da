# Third-party dependencies, all from Debian 12 packages (scripts/install-deps).
find_package(CapnProto CONFIG REQUIRED)
find_package(RocksDB CONFIG REQUIRED)
find_package(zstd CONFIG REQUIRED) # after RocksDB, which looks for it its own way
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS unit_test_framework)
find_package(Threads REQUIRED)

# CAF 0.17 ships neither a CMake config nor a .pc file.
find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
add_library(CAF::core SHARED IMPORTED)
set_target_properties(CAF::core PROPERTIES
  IMPORTED_LOCATION ${CAF_CORE_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES Threads::Threads)
