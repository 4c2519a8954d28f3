#!/usr/bin/env bash
# tools/dev.sh - the two quick-start commands and their building blocks.
#
#   tools/dev.sh run [ARGS]   install what is missing, build, start mux-echo
#                             on its defaults (127.0.0.1:7000) or with ARGS
#   tools/dev.sh test         install what is missing, build, run the whole
#                             suite: unit + integration + valgrind memcheck,
#                             then again under ASan+UBSan and under TSan
#   tools/dev.sh deps         only install the Debian packages
#   tools/dev.sh build [DIR] [CMAKE ARGS]   configure + build into DIR (build)
set -euo pipefail
cd "$(dirname "$0")/.."

# Build and test dependencies. curl, wrk and chromium are the real HTTP
# clients the mux-httpd tests drive (each case skips if its tool is absent);
# gnuplot renders mux-stress --plot; bc and util-linux serve the benchmarks.
PACKAGES=(build-essential cmake pkg-config libconfig-dev libcmocka-dev valgrind
          gnuplot-nox curl wrk chromium netcat-openbsd bc util-linux)
JOBS=$(nproc 2>/dev/null || echo 2)

deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
    local dir=${1:-build}
    shift || true
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
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

run_tests() {
    deps
    echo "== build (RelWithDebInfo) and test: unit, integration, memcheck"
    build build
    ctest --test-dir build --output-on-failure -j"$JOBS"
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DMUX_SANITIZE=address,undefined
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure -j"$JOBS" -L "unit|integration"
    echo "== ThreadSanitizer"
    build build-tsan -DCMAKE_BUILD_TYPE=Debug -DMUX_SANITIZE=thread
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        no_aslr ctest --test-dir build-tsan --output-on-failure -j"$JOBS" -L "unit|integration"
}

case "${1:-}" in
deps) deps ;;
build) shift; deps; build "$@" ;;
run)
    shift
    deps
    build build
    echo "== mux-echo (Ctrl-C stops it gracefully); try: echo hello | nc -q1 127.0.0.1 7000"
    exec build/apps/mux-echo -c apps/mux.conf "$@"
    ;;
test) run_tests ;;
*)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
