# MuxInstall.cmake - what `cmake --install` and the .deb add beyond the
# library (framework/CMakeLists.txt): the programs, their example configs
# and the man pages. Included after every target is defined, so a program
# is installed (with its man page) exactly when its target exists.
set(MUX_PROGRAMS mux-echo mux-upper mux-queue mux-httpd mux-proxy mux-chat)
set(MUX_EXAMPLES_DIR ${CMAKE_INSTALL_FULL_DOCDIR}/examples)

foreach(prog IN LISTS MUX_PROGRAMS)
    if(TARGET ${prog})
        install(TARGETS ${prog} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
endforeach()
# mux-stress installs itself (tools/stress/CMakeLists.txt).

# Every commented example config next to the sources (apps/*.conf).
file(GLOB MUX_EXAMPLE_CONFIGS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/apps/*.conf)
install(FILES ${MUX_EXAMPLE_CONFIGS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Man pages: docs/man/*.in with the installed paths and the shared sections
# (common server options, configuration, output, signals, exit status)
# filled in, generated into build/man/.
function(mux_man_fragment var file)
    set(path ${PROJECT_SOURCE_DIR}/docs/man/${file})
    file(READ ${path} text)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
    string(STRIP "${text}" text)
    string(CONFIGURE "${text}" text @ONLY)
    set(${var} "${text}" PARENT_SCOPE)
endfunction()
mux_man_fragment(MUX_MAN_OPTIONS common-options.roff)
mux_man_fragment(MUX_MAN_HELP common-help.roff)
mux_man_fragment(MUX_MAN_CONFIG common-config.roff)
mux_man_fragment(MUX_MAN_SERVER common-server.roff)

set(MUX_MAN_DIR ${PROJECT_BINARY_DIR}/man)
foreach(page IN LISTS MUX_PROGRAMS ITEMS mux-stress)
    configure_file(docs/man/${page}.1.in ${MUX_MAN_DIR}/man1/${page}.1 @ONLY)
    if(TARGET ${page})
        install(FILES ${MUX_MAN_DIR}/man1/${page}.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
    endif()
endforeach()
configure_file(docs/man/mux.3.in ${MUX_MAN_DIR}/man3/mux.3 @ONLY)
configure_file(docs/man/mux.conf.5.in ${MUX_MAN_DIR}/man5/mux.conf.5 @ONLY)
install(FILES ${MUX_MAN_DIR}/man3/mux.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
install(FILES ${MUX_MAN_DIR}/man5/mux.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# The systemd unit template (mux@echo, mux@httpd, ...), with this prefix's
# program directory and config directory (/usr/bin and /etc/mux for the
# .deb's /usr), under <prefix>/lib/systemd/system, which systemd searches
# for /usr and /usr/local alike.
set(MUX_UNIT_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(MUX_UNIT_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mux)
configure_file(packaging/systemd/mux@.service.in ${PROJECT_BINARY_DIR}/systemd/mux@.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/systemd/mux@.service DESTINATION lib/systemd/system)
