# MuxPackage.cmake - `cpack -G DEB` in a build directory makes one .deb of
# everything `cmake --install` puts in place (library, headers, mux.pc, the
# CMake package, programs, example configs, man pages).
#
# The package installs under the build's CMAKE_INSTALL_PREFIX, the same
# prefix compiled into the programs (the example config path in --help), so
# a package never points at files it does not contain. For a Debian-style
# package (/usr/bin, /usr/lib/<arch>) configure with -DCMAKE_INSTALL_PREFIX=/usr.
set(CPACK_PACKAGE_NAME mux)
set(CPACK_PACKAGE_VENDOR "mux")
set(CPACK_PACKAGE_CONTACT "mux maintainers <mux@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "multi-threaded reactor server framework in C (acceptor + epoll workers)")
set(CPACK_PACKAGE_DESCRIPTION
    "An acceptor thread hands connections round-robin to worker threads, each
with its own poller; a protocol plugs in as four callbacks. Contains the
library (shared and static), headers, pkg-config and CMake files, the sample
servers, the load client mux-stress, example configs and man pages.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR "")

set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Runtime dependencies (libc6, libconfig9) come from dpkg-shlibdeps; the
# development files add what a consumer's build resolves: mux.pc requires
# libconfig (Requires.private) and mux-config.cmake finds it via pkg-config.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libconfig-dev, libsystemd-dev, libssl-dev, liburing-dev")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "pkg-config")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# libmux.so.0 may land in a directory the loader finds only through its
# cache (/usr/local/lib): the ldconfig trigger refreshes it on install and
# removal whatever the prefix.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/deb/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
