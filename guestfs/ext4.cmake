# banger_guestfs_ext4: ext4 images edited in-process with libext2fs (ext4.hpp). The only library
# that includes libext2fs headers; they stay out of ext4.hpp.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(BANGER_EXT2FS IMPORTED_TARGET ext2fs com_err)
endif()
if(TARGET PkgConfig::BANGER_EXT2FS)
  set(banger_ext2fs_libs PkgConfig::BANGER_EXT2FS)
else()
  find_library(BANGER_EXT2FS_LIB ext2fs REQUIRED)
  find_library(BANGER_COM_ERR_LIB com_err REQUIRED)
  set(banger_ext2fs_libs ${BANGER_EXT2FS_LIB} ${BANGER_COM_ERR_LIB})
endif()

add_library(banger_guestfs_ext4 STATIC ${CMAKE_CURRENT_LIST_DIR}/ext4.cpp ${CMAKE_CURRENT_LIST_DIR}/ext4_write.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ext4_read.cpp ${CMAKE_CURRENT_LIST_DIR}/ext4_tree.cpp)
target_link_libraries(banger_guestfs_ext4 PUBLIC banger_common PRIVATE ${banger_ext2fs_libs})

# Unit tests: real images, checked with the real debugfs and e2fsck -fn.
banger_test(guestfs_ext4_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/ext4.test.cpp ${CMAKE_CURRENT_LIST_DIR}/ext4_tree.test.cpp
  LIBS banger_guestfs_ext4 banger_test_support
  LABELS unit)
