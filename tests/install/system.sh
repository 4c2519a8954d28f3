#!/usr/bin/env bash
# system.sh BUILD_DIR - the README's `cmake --install build` into the default
# prefix /usr/local, as root: the install refreshes the loader cache, so the
# README example built with `cc rev.c $(pkg-config --cflags --libs mux)` runs
# with no ldconfig, LD_LIBRARY_PATH or PKG_CONFIG_PATH. Afterwards exactly
# the installed files (and the directories the install created) are removed
# and the cache refreshed again. Skipped unless root, unless BUILD_DIR is
# configured for /usr/local, and when mux is in /usr/local already.
# Registered as test_install_system.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ "$(id -u)" -eq 0 ] || skip "installs into /usr/local: run as root (CI does)"
[ "$prefix" = /usr/local ] || skip "$build is configured for prefix $prefix, this test covers /usr/local"
command -v ldconfig > /dev/null || PATH=$PATH:/sbin:/usr/sbin
for f in /usr/local/include/mux /usr/local/lib/libmux.so.0 /usr/local/lib/pkgconfig/mux.pc /usr/local/bin/mux-echo; do
    [ -e "$f" ] && skip "$f exists: mux is installed in /usr/local already, not touching it"
done

work=$(mktemp -d)
files=()
new_dirs=()
uninstall() {
    local f d
    for f in "${files[@]}"; do rm -f "/usr/local/$f"; done
    for ((d = ${#new_dirs[@]} - 1; d >= 0; d--)); do rmdir "/usr/local/${new_dirs[d]}" 2>/dev/null || true; done
    ldconfig
    files=()
    new_dirs=()
}
cleanup() { stop_server; uninstall; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A staged copy lists exactly what the real install writes, and which of its
# directories do not exist yet, so the cleanup removes no one else's files.
DESTDIR=$work/stage cmake --install "$build" > /dev/null
mapfile -t files < <(cd "$work/stage/usr/local" && find . ! -type d | sed 's|^\./||')
mapfile -t dirs < <(cd "$work/stage/usr/local" && find . -mindepth 1 -type d | sed 's|^\./||' | sort)
for d in "${dirs[@]}"; do [ -d "/usr/local/$d" ] || new_dirs+=("$d"); done
echo "== cmake --install $build (${#files[@]} files)"
cmake --install "$build" > "$work/install.log" || { cat "$work/install.log"; exit 1; }
grep -F 'ldconfig' "$work/install.log" || fail "the install did not refresh the loader cache"
ldconfig -p | grep -q '/usr/local/lib/libmux\.so\.0$' || fail "libmux.so.0 is not in the loader cache"

clean=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$work")
echo "== cc rev.c \$(pkg-config --cflags --libs mux)"
cp "$here/rev.c" "$work/rev.c"
# Exactly the documented command: no -o, no -std, nothing else.
(cd "$work" && "${clean[@]}" sh -c 'cc rev.c $(pkg-config --cflags --libs mux)' && mv a.out rev)
readelf -d "$work/rev" | grep -qE 'RPATH|RUNPATH' && fail "rev has an rpath; /usr/local/lib needs none"
lib=$(ldd "$work/rev" | awk '/libmux\.so/ {print $3}')
[ "$lib" = /usr/local/lib/libmux.so.0 ] || fail "rev loads libmux from '$lib'"
roundtrip rev "$work/rev"
"${clean[@]}" mux-echo --help | grep -qF /usr/local/share/doc/mux/examples/mux.conf ||
    fail "mux-echo --help does not name /usr/local/share/doc/mux/examples/mux.conf"
roundtrip echo mux-echo

echo "== uninstall"
uninstall
[ ! -e /usr/local/lib/libmux.so.0 ] || fail "uninstall left libmux.so.0"
ldconfig -p | grep -q '/usr/local/lib/libmux' && fail "the loader cache still lists /usr/local/lib/libmux"
echo "system install check passed"
