# banger_guestfs_kernel: Debian kernel packages -> kernel directories (guestfs/kernel_dir.hpp):
# .deb reading (deb), bzImage -> PVH vmlinux (bzimage), the guest initramfs (initramfs).
find_package(LibArchive REQUIRED)
find_package(LibLZMA REQUIRED)
find_package(ZLIB REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)

add_library(banger_guestfs_kernel STATIC
  ${CMAKE_CURRENT_LIST_DIR}/deb.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bzimage.cpp
  ${CMAKE_CURRENT_LIST_DIR}/initramfs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kernel_dir.cpp)
target_link_libraries(banger_guestfs_kernel
  PUBLIC banger_common
  PRIVATE LibArchive::LibArchive PkgConfig::LZ4 LibLZMA::LibLZMA ZLIB::ZLIB zstd::libzstd_shared OpenSSL::Crypto
    nlohmann_json::nlohmann_json)

# Unit tests: synthetic packages (dpkg-deb), hostile archives, module ordering, initramfs contents.
banger_test(guestfs_kernel_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/deb.test.cpp ${CMAKE_CURRENT_LIST_DIR}/bzimage.test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/initramfs.test.cpp ${CMAKE_CURRENT_LIST_DIR}/kernel_dir.test.cpp
  LIBS banger_guestfs_kernel banger_test_support LibArchive::LibArchive ZLIB::ZLIB PkgConfig::LZ4 LibLZMA::LibLZMA
    zstd::libzstd_shared nlohmann_json::nlohmann_json
  LABELS unit)

# End to end: Debian's cloud kernel (apt-get download, cached outside the build tree) booted
# under QEMU microvm with the initramfs built here and a busybox root.
banger_test(guestfs_kernel_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kernel.e2e.test.cpp
  LIBS banger_guestfs_kernel banger_test_support
  LABELS e2e)
set_tests_properties(guestfs_kernel_e2e_test PROPERTIES TIMEOUT 600 RESOURCE_LOCK qemu_guest)
