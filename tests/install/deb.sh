#!/usr/bin/env bash
# deb.sh SOURCE_DIR CC - the .deb as design.md section 8 defines it: a
# Release build for prefix /usr, `cpack -G DEB`, then `dpkg -i` into this
# machine, and a user's view of the result: programs on PATH, man pages,
# example configs named by --help, the README example built with
# `cc rev.c $(pkg-config --cflags --libs mux)` and run with no extra
# environment, find_package(mux). `dpkg --purge` at the end leaves the machine as
# it was. Needs root and dpkg (skipped otherwise). Registered as test_deb.
set -euo pipefail
src=$1
compiler=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "test_deb installs a package: run as root (CI does)"
for tool in dpkg dpkg-deb cpack pkg-config; do
    command -v "$tool" > /dev/null || skip "$tool not found"
done
if dpkg-query -W -f='${Status}' mux 2>/dev/null | grep -q installed; then
    skip "a package named mux is installed already; not replacing it"
fi
for pc in /usr/local/lib/pkgconfig/mux.pc /usr/local/lib/*/pkgconfig/mux.pc; do
    [ -e "$pc" ] && skip "$pc exists (a cmake --install to /usr/local) and would shadow the package's mux.pc"
done

work=$(mktemp -d)
installed=""
cleanup() {
    stop_server
    if [ -n "$installed" ]; then
        echo "== dpkg --purge mux"
        dpkg --purge mux > "$work/dpkg-r.log" 2>&1 || cat "$work/dpkg-r.log"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== Release build for prefix /usr, cpack -G DEB"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DCMAKE_C_COMPILER="$compiler" -DMUX_BUILD_TESTS=OFF > "$work/configure.log"
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
(cd "$work/build" && cpack -G DEB > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
debs=("$work"/build/*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one .deb, got: ${debs[*]}"
deb=${debs[0]}
echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"

echo "== contents"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' > "$work/contents"
programs=(mux-echo mux-upper mux-queue mux-httpd mux-stress)
for p in mux-proxy mux-chat; do   # the contract's other two, once they are built
    if [ -x "$work/build/apps/$p" ]; then programs+=("$p"); else echo "note: $p not built in this tree"; fi
done
multiarch=$(grep -o '^/usr/lib/[^/]*/libmux\.so\.0$' "$work/contents" | cut -d/ -f4)
[ -n "$multiarch" ] || fail "no /usr/lib/<arch>/libmux.so.0 in the package"
libdir=/usr/lib/$multiarch
want=("$libdir/libmux.so" "$libdir/libmux.so.0" "$libdir/libmux.a" "$libdir/pkgconfig/mux.pc"
      "$libdir/cmake/mux/mux-config.cmake" /usr/include/mux/mux.h /usr/include/mux/conn.h
      /usr/share/doc/mux/examples/mux.conf /usr/share/doc/mux/examples/httpd.conf
      /usr/share/man/man3/mux.3 /usr/share/man/man5/mux.conf.5
      "/usr/lib/systemd/system/mux@.service")
for p in "${programs[@]}"; do want+=("/usr/bin/$p" "/usr/share/man/man1/$p.1"); done
for f in "${want[@]}"; do
    grep -qxF "$f" "$work/contents" || fail "$f is not in the package"
done
echo "all ${#want[@]} expected paths present"
# The unit runs the packaged programs with the configs in /etc/mux.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/mux@.service \
    | grep -qxF 'ExecStart=/usr/bin/mux-%i -c /etc/mux/%i.conf' \
    || fail "the packaged mux@.service does not run /usr/bin/mux-%i -c /etc/mux/%i.conf"

echo "== dpkg -i"
installed=1
dpkg -i "$deb" > "$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; fail "dpkg -i"; }

# From here on every command runs as a fresh login would: PATH only.
clean=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$work")
for p in "${programs[@]}"; do
    [ "$("${clean[@]}" sh -c "command -v $p")" = "/usr/bin/$p" ] || fail "$p is not /usr/bin/$p on PATH"
done
if grep -qs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    echo "note: dpkg here excludes /usr/share/man (checked in the package contents instead)"
else
    for page in "${programs[@]/%/.1}" mux.3 mux.conf.5; do
        sect=${page##*.}
        found=$("${clean[@]}" man -w "$sect" "${page%.*}") || fail "man -w $sect ${page%.*}"
        [ "$found" = "/usr/share/man/man$sect/$page" ] || fail "man -w $sect ${page%.*} gives $found"
    done
    echo "man -w finds every page"
fi
conf=/usr/share/doc/mux/examples/mux.conf
if grep -qs '^path-exclude=/usr/share/doc' /etc/dpkg/dpkg.cfg.d/*; then
    echo "note: dpkg here excludes /usr/share/doc (checked in the package contents instead)"
else
    [ -f "$conf" ] || fail "$conf is not installed"
fi
for p in "${programs[@]}"; do
    [ "$p" = mux-stress ] && continue
    "${clean[@]}" "$p" --help | grep -qF "$conf" || fail "$p --help does not name $conf"
done
echo "every server's --help names $conf"

echo "== cc rev.c \$(pkg-config --cflags --libs mux)"
cp "$here/rev.c" "$work/rev.c"
# Exactly the documented command: no -o, no -std, nothing else.
(cd "$work" && "${clean[@]}" sh -c 'cc rev.c $(pkg-config --cflags --libs mux)' && mv a.out rev)
lib=$(ldd "$work/rev" | awk '/libmux\.so/ {print $3}')
[ "$(readlink -f "$lib")" = "$(readlink -f "$libdir/libmux.so.0")" ] || fail "rev loads libmux from '$lib'"
readelf -d "$work/rev" | grep -qE 'RPATH|RUNPATH' && fail "rev has an rpath; a system install needs none"
roundtrip rev "$work/rev"
roundtrip echo /usr/bin/mux-echo

echo "== find_package(mux) with no prefix path"
"${clean[@]}" cmake -S "$here" -B "$work/consumer" > /dev/null
"${clean[@]}" cmake --build "$work/consumer" > /dev/null
roundtrip rev "$work/consumer/rev"

echo "== dpkg --purge (remove, leaving nothing in the dpkg database)"
installed=""
dpkg --purge mux > "$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg --purge"; }
for f in "/usr/bin/mux-echo" "$libdir/libmux.so.0" /usr/include/mux/mux.h; do
    [ ! -e "$f" ] || fail "$f still there after dpkg --purge"
done
ldconfig -p | grep -q 'libmux\.so' && fail "the loader cache still lists libmux after dpkg --purge"
echo "deb check passed"
