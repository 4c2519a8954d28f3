#!/usr/bin/env bash
# check.sh BUILD_DIR - the examples as a user builds them: installs mux from
# BUILD_DIR into a temporary prefix, builds examples/ with its own
# CMakeLists.txt (find_package(mux), CMAKE_PREFIX_PATH only) and each
# example with pkg-config (PKG_CONFIG_PATH only), then runs them with no
# other environment and checks their replies (tests/install/lib.sh).
# Registered as test_examples.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/install/lib.sh"
work=$(mktemp -d)
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > /dev/null
pcdir=$(dirname "$(find "$prefix" -name mux.pc | head -1)")

echo "== find_package(mux) (CMAKE_PREFIX_PATH=$prefix)"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$work/cmake" > /dev/null
echo "== pkg-config (PKG_CONFIG_PATH=$pcdir)"
cc -std=c11 -Wall -Wextra -Werror "$here/stats_echo.c" \
    $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs mux) -o "$work/stats_echo-pc"

for bin in "$work/cmake/stats_echo" "$work/stats_echo-pc"; do
    echo "== run $bin"
    roundtrip echo "$bin"
done
echo "examples check passed"
