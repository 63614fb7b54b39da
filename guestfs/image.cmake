# banger_guestfs_image: guest images (image.hpp): busybox and debootstrap builds, directory and
# tar imports, verification; OCI layers applied into ext4 (layer.hpp, layer.cpp) and pulled
# images flattened from them (image_oci.cpp). Staging and finishing in image.cpp, the builders in
# image_busybox.cpp and image_debootstrap.cpp, imports in image_import.cpp, the debootstrap
# cache's tar writer in image_cache.cpp, verification in image_verify.cpp.
find_package(LibArchive REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(ZLIB REQUIRED)

add_library(banger_guestfs_image STATIC
  ${CMAKE_CURRENT_LIST_DIR}/image.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_busybox.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_debootstrap.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_cache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_import.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_verify.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_oci.cpp
  ${CMAKE_CURRENT_LIST_DIR}/layer.cpp)
target_link_libraries(banger_guestfs_image
  PUBLIC banger_common
  PRIVATE banger_guestfs_ext4 banger_guestfs_kernel LibArchive::LibArchive OpenSSL::Crypto
    ZLIB::ZLIB zstd::libzstd_shared nlohmann_json::nlohmann_json)

# Unit tests: real images built from stand-in guest binaries, read back with ext4_image;
# hostile directories and tar files; pulled images flattened from gzip, zstd and plain layers
# built in the test, and layers that do not match their config refused.
banger_test(guestfs_image_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/image.test.cpp
  LIBS banger_guestfs_image banger_guestfs_ext4 banger_test_support LibArchive::LibArchive
    nlohmann_json::nlohmann_json
  LABELS unit)

# Unit tests: OCI layers built in the test with libarchive, applied into real images, read back
# and checked with e2fsck -fn; the hostile categories each refused.
banger_test(guestfs_layer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/layer.test.cpp
  LIBS banger_guestfs_image banger_guestfs_ext4 banger_test_support LibArchive::LibArchive
  LABELS unit)
