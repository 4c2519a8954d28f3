#!/usr/bin/env bash
# tools/dev.sh - the two quick-start commands and their building blocks.
#
#   tools/dev.sh run [ARGS]   install what building needs, build mux-echo,
#                             start it on its defaults (127.0.0.1:7000) or ARGS
#   tools/dev.sh test         install what testing needs, build every target
#                             with gcc and clang in Debug and Release (warnings
#                             are errors), run the whole suite (unit +
#                             integration + valgrind memcheck), then again
#                             under ASan+UBSan and under TSan; ends with one
#                             SUMMARY line, exit status nonzero if any stage failed
#   tools/dev.sh deps [test]  only install the Debian packages (for run / test)
#   tools/dev.sh build [DIR] [CMAKE ARGS]   configure + build into DIR (build)
set -euo pipefail
cd "$(dirname "$0")/.."

# What building the library and the servers needs.
BUILD_PACKAGES=(build-essential cmake pkg-config libconfig-dev libsystemd-dev libssl-dev liburing-dev
                libnghttp2-dev)
# What the test command adds: cmocka and valgrind for the suite, clang for
# the compiler matrix; curl, wrk and chromium are the real HTTP clients the
# mux-httpd tests drive (each case skips if its tool is absent); gnuplot
# renders mux-stress --plot; bc and util-linux serve the benchmarks; file
# and man-db serve the package test (cpack's dependency scan, man -w);
# prometheus (promtool) checks the metrics, haproxy fronts the deploy test;
# openssl (s_client, the test CA) and python3's ssl module drive the TLS tests;
# nghttp2-client (nghttp, h2load) and python3-h2 drive mux-httpd's HTTP/2 tests.
TEST_PACKAGES=(libcmocka-dev valgrind clang gnuplot-nox curl wrk chromium netcat-openbsd
               bc util-linux file man-db prometheus haproxy libevent-dev libuv1-dev
               openssl python3 nghttp2-client python3-h2)
JOBS=$(nproc 2>/dev/null || echo 2)

deps() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [CMAKE ARGS]: configure (RelWithDebInfo unless ARGS say
# otherwise, tests and tools on) and build every target.
build() {
    local dir=${1:-build}
    shift || true
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUX_BUILD_TESTS=ON \
        -DMUX_BUILD_TOOLS=ON "$@" >/dev/null || return 1
    cmake --build "$dir" -j"$JOBS"
}

# TSan (gcc 12) cannot map its shadow memory when the kernel randomises
# mmap addresses with more bits than it expects; running without ASLR
# avoids that without touching system settings.
no_aslr() {
    if setarch "$(uname -m)" -R true 2>/dev/null; then
        setarch "$(uname -m)" -R "$@"
    else
        "$@"
    fi
}

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Stage results for the SUMMARY line, in order; FAILED is set by any failure.
RESULTS=()
FAILED=""
STARTED=$SECONDS

summary() {
    local rc=$? IFS=";"
    [ "$rc" -ne 0 ] && [ -z "$FAILED" ] && RESULTS+=("aborted (exit $rc)") && FAILED=1
    echo
    echo "SUMMARY:${RESULTS[*]/#/ }; total $(fmt_time $((SECONDS - STARTED)))${FAILED:+; FAILED}"
}

# matrix: every target with gcc and clang in Debug and Release, -Werror.
matrix() {
    local cc bt bad=() t0=$SECONDS
    for cc in gcc clang; do
        for bt in Debug Release; do
            echo "== build $cc $bt (-Werror)"
            CC=$cc build "build-$cc-${bt,,}" -DCMAKE_BUILD_TYPE="$bt" -DMUX_WERROR=ON ||
                bad+=("$cc/$bt")
        done
    done
    if [ ${#bad[@]} -eq 0 ]; then
        RESULTS+=("build gcc/clang x Debug/Release ok ($(fmt_time $((SECONDS - t0))))")
    else
        RESULTS+=("build ${bad[*]} FAILED")
        FAILED=1
    fi
}

# suite NAME DIR [CTEST ARGS]: runs ctest in DIR and records "NAME
# passed/total" (skipped tests are named); the ctest output goes to the
# terminal and to DIR/ctest.log.
suite() {
    local name=$1 dir=$2 t0=$SECONDS rc=0
    shift 2
    "$@" ctest --test-dir "$dir" --output-on-failure -j"$JOBS" "${CTEST_ARGS[@]}" 2>&1 |
        tee "$dir/ctest.log" || rc=$?
    local total failed skipped
    total=$(sed -n 's/.* tests failed out of \([0-9]*\)$/\1/p' "$dir/ctest.log" | tail -1)
    failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of .*/\1/p' "$dir/ctest.log" | tail -1)
    skipped=$(grep -c '(Skipped)$' "$dir/ctest.log" || true)
    if [ -z "$total" ]; then
        RESULTS+=("$name FAILED (no result)")
        FAILED=1
        return
    fi
    local res="$name $((total - failed - skipped))/$total"
    [ "$skipped" -gt 0 ] && res+=" ($skipped skipped)"
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
        res+=" FAILED"
        FAILED=1
    fi
    RESULTS+=("$res ($(fmt_time $((SECONDS - t0))))")
}

# stage NAME DIR [RUNNER...] -- [CMAKE ARGS]: build DIR (-Werror), then run
# its suite as RUNNER ctest ... (RUNNER: env settings, no_aslr).
stage() {
    local name=$1 dir=$2 runner=()
    shift 2
    while [ "$1" != "--" ]; do runner+=("$1"); shift; done
    shift
    if build "$dir" -DMUX_WERROR=ON "$@"; then
        suite "$name" "$dir" "${runner[@]}"
    else
        RESULTS+=("$name build FAILED")
        FAILED=1
    fi
}

run_tests() {
    trap summary EXIT
    if ! deps "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; then
        RESULTS+=("deps FAILED")
        FAILED=1
        exit 1
    fi
    matrix
    echo "== build (RelWithDebInfo) and test: unit, integration, memcheck"
    CTEST_ARGS=()
    stage tests build --
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
    CTEST_ARGS=(-L "unit|integration")
    stage asan build-asan env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        -- -DCMAKE_BUILD_TYPE=Debug -DMUX_SANITIZE=address,undefined
    echo "== ThreadSanitizer"
    stage tsan build-tsan no_aslr env "TSAN_OPTIONS=halt_on_error=1 second_deadlock_stack=1" \
        -- -DCMAKE_BUILD_TYPE=Debug -DMUX_SANITIZE=thread
    [ -z "$FAILED" ] || exit 1
}

case "${1:-}" in
deps)
    if [ "${2:-}" = test ]; then deps "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; else deps "${BUILD_PACKAGES[@]}"; fi
    ;;
build)
    shift
    deps "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build "$@"
    ;;
run)
    shift
    deps "${BUILD_PACKAGES[@]}"
    # Tests off: configuring them needs cmocka, which running does not.
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUX_BUILD_TESTS=OFF \
        -DMUX_WERROR=OFF >/dev/null
    cmake --build build -j"$JOBS" --target mux-echo
    echo "== mux-echo (Ctrl-C stops it gracefully); try: echo hello | nc -q1 127.0.0.1 7000"
    exec build/apps/mux-echo -c apps/mux.conf "$@"
    ;;
test) run_tests ;;
*)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
