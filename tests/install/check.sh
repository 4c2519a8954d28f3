#!/usr/bin/env bash
# check.sh BUILD_DIR - the custom-prefix install as the README documents it:
# installs mux from BUILD_DIR into a temporary prefix, builds the README
# example against it with pkg-config (PKG_CONFIG_PATH only: mux.pc carries
# the rpath) and with CMake find_package (CMAKE_PREFIX_PATH only), runs both
# with no other environment and talks to them. Registered as test_install.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
work=$(mktemp -d)
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > /dev/null
pcdir=$(dirname "$(find "$prefix" -name mux.pc | head -1)")
for f in include/mux/mux.h share/doc/mux/examples/mux.conf share/man/man3/mux.3 \
         share/man/man5/mux.conf.5 share/man/man1/mux-echo.1 bin/mux-echo; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $prefix/$f"; exit 1; }
done

echo "== pkg-config (PKG_CONFIG_PATH=$pcdir)"
flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs mux)
echo "$flags"
cc -std=c11 -Wall -Wextra -Werror "$here/rev.c" $flags -o "$work/rev-pc"

echo "== find_package(mux) (CMAKE_PREFIX_PATH=$prefix)"
cmake -S "$here" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$work/consumer" > /dev/null

for bin in "$work/rev-pc" "$work/consumer/rev"; do
    echo "== run $bin (no LD_LIBRARY_PATH)"
    lib=$(ldd "$bin" | awk '/libmux\.so/ {print $3}')
    case $lib in
    "$prefix"/*) ;;
    *) echo "$bin loads libmux from '$lib', not from $prefix"; exit 1 ;;
    esac
    roundtrip rev "$bin"
done
echo "install check passed"
