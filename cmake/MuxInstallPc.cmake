# MuxInstallPc.cmake - runs at install time, after libmux is in place, so
# that a program built with `pkg-config --libs mux` runs with no extra
# environment whatever the prefix:
#  - the library directory is one the dynamic loader searches (ld.so.conf,
#    e.g. /usr/local/lib, /usr/lib/<arch>): mux.pc links plainly, and when
#    installing for real (no DESTDIR) as root the loader cache is refreshed,
#    since ld.so finds a new library in /usr/local/lib only through it;
#  - any other directory (a custom prefix): mux.pc adds an rpath to it.
# Packages (cpack stages through DESTDIR) get the ldconfig trigger instead.
#
# Inputs: MUX_PC_PLAIN, MUX_PC_RPATH (the two mux.pc variants), MUX_LIBDIR
# (CMAKE_INSTALL_LIBDIR, relative to the install prefix or absolute).

cmake_policy(PUSH)
cmake_policy(VERSION 3.18)

function(mux_loader_dirs out ldconfig)
    set(dirs "")
    if(ldconfig)
        # -N -X: only list, never touch the cache or links (works unprivileged).
        execute_process(COMMAND ${ldconfig} -v -N -X OUTPUT_VARIABLE listing
                        ERROR_QUIET RESULT_VARIABLE rc)
        string(REGEX MATCHALL "(^|\n)/[^:\n]*:" found "${listing}")
        foreach(d IN LISTS found)
            string(REGEX REPLACE "^\n|:$" "" d "${d}")
            get_filename_component(d "${d}" REALPATH)
            list(APPEND dirs "${d}")
        endforeach()
    endif()
    set(${out} "${dirs}" PARENT_SCOPE)
endfunction()

if(IS_ABSOLUTE "${MUX_LIBDIR}")
    set(libdir "${MUX_LIBDIR}")
else()
    set(libdir "${CMAKE_INSTALL_PREFIX}/${MUX_LIBDIR}")
endif()
# The final path (not the DESTDIR staging copy) decides, symlinks resolved
# as far as it exists (/usr/lib/<arch> is /lib/<arch> with a merged /usr).
get_filename_component(libdir_real "${libdir}" REALPATH)
find_program(MUX_LDCONFIG ldconfig PATHS /sbin /usr/sbin)
mux_loader_dirs(loader_dirs "${MUX_LDCONFIG}")

if(libdir_real IN_LIST loader_dirs)
    set(pc "${MUX_PC_PLAIN}")
else()
    set(pc "${MUX_PC_RPATH}")
    message(STATUS "mux.pc: ${libdir} is not searched by the dynamic loader; "
                   "programs linked through pkg-config get an rpath to it")
endif()
file(INSTALL DESTINATION "${libdir}/pkgconfig" TYPE FILE RENAME mux.pc FILES "${pc}")

if(libdir_real IN_LIST loader_dirs AND "$ENV{DESTDIR}" STREQUAL "" AND MUX_LDCONFIG)
    execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(uid STREQUAL "0")
        execute_process(COMMAND ${MUX_LDCONFIG} RESULT_VARIABLE rc)
        if(NOT rc EQUAL 0)
            message(WARNING "ldconfig failed (${rc}): run it before starting programs linked to libmux")
        else()
            message(STATUS "ldconfig: loader cache refreshed for ${libdir}")
        endif()
    else()
        message(WARNING "not root: run `ldconfig` as root so the loader finds ${libdir}/libmux.so.0")
    endif()
endif()

cmake_policy(POP)
