#!/usr/bin/env bash
# check.sh BUILD_DIR - installs mux from BUILD_DIR into a temporary prefix,
# builds the README example against it twice (pkg-config, and CMake
# find_package), runs it and talks to it. Registered as ctest test_install.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cmake --install "$build" --prefix "$work/prefix" > /dev/null
pcdir=$(dirname "$(find "$work/prefix" -name mux.pc | head -1)")
libdir=$(dirname "$(find "$work/prefix" -name 'libmux.so' | head -1)")

echo "== pkg-config"
PKG_CONFIG_PATH=$pcdir cc -std=c11 -Wall -Wextra -Werror "$here/rev.c" \
    $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs mux) -Wl,-rpath,"$libdir" -o "$work/rev-pc"

echo "== find_package(mux)"
cmake -S "$here" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_BUILD_RPATH="$libdir" > /dev/null
cmake --build "$work/consumer" > /dev/null

for bin in "$work/rev-pc" "$work/consumer/rev"; do
    echo "== run $bin"
    coproc SERVER { exec "$bin" -l 127.0.0.1:0 -w 1; }
    pid=$SERVER_PID
    read -r -t 10 ready <&"${SERVER[0]}"
    echo "$ready"
    port=${ready#listening on 127.0.0.1:}
    port=${port%% *}
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'hello world\nmux\n' >&3
    read -r -t 5 a <&3
    read -r -t 5 b <&3
    exec 3>&-
    [ "$a" = "dlrow olleh" ] && [ "$b" = "xum" ] || { echo "unexpected reply: '$a' '$b'"; exit 1; }
    kill -TERM "$pid"
    wait "$pid"           # graceful shutdown exits 0 (set -e fails otherwise)
    pid=""
done
echo "install check passed"
