#!/usr/bin/env bash
# unit.sh SOURCE_DIR BUILD_DIR - the systemd unit the package ships
# (build/systemd/mux@.service, from packaging/systemd/mux@.service.in):
#  - the settings docs/deploy.md relies on: Type=notify, reload = config
#    check + SIGHUP, SIGTERM with a stop timeout above the grace period,
#    NoNewPrivileges, LimitNOFILE;
#  - its command lines run as systemd would run them (no systemd needed):
#    ExecStartPre accepts a good config and refuses a broken one (exit 2),
#    ExecStart serves, both ExecReload lines reload it, KillSignal stops it
#    with exit 0 within TimeoutStopSec;
#  - `systemd-analyze verify` for instances echo and httpd finds nothing
#    (skipped with exit 77 when systemd-analyze is not installed; the man
#    pages in Documentation= are checked by test_deb, not here).
# Registered as test_systemd_unit.
set -euo pipefail
src=$1
build=$2
unit=$build/systemd/mux@.service
here=$(cd "$(dirname "$0")" && pwd)
. "$src/tests/install/lib.sh"
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$unit" ] || fail "$unit not generated"

work=$(mktemp -d)
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

# key KEY: every value of KEY= in [Service] (one per line).
key() { sed -n '/^\[Service\]/,/^\[/p' "$unit" | sed -n "s/^$1=//p"; }

echo "== settings"
[ "$(key Type)" = notify ] || fail "Type=$(key Type), expected notify"
[ "$(key ExecReload | tail -1)" = '/bin/kill -HUP $MAINPID' ] || fail "last ExecReload is not kill -HUP \$MAINPID"
[ "$(key KillSignal)" = SIGTERM ] || fail "KillSignal is not SIGTERM"
[ "$(key NoNewPrivileges)" = yes ] || fail "NoNewPrivileges is not yes"
[ -n "$(key LimitNOFILE)" ] || fail "no LimitNOFILE"
stop_s=$(key TimeoutStopSec); stop_s=${stop_s%s}
grace_ms=$(sed -n 's/^ *shutdown_grace_ms = \([0-9]*\);.*/\1/p' "$src/apps/mux.conf")
[ -n "$grace_ms" ] || fail "no shutdown_grace_ms in apps/mux.conf"
[ $((stop_s * 1000)) -gt "$grace_ms" ] || fail "TimeoutStopSec=${stop_s}s is not above shutdown_grace_ms=$grace_ms"
echo "Type=notify, reload by SIGHUP, TimeoutStopSec=${stop_s}s > grace ${grace_ms} ms"

# The unit's commands for instance echo, pointed at this build and $work:
# cmd KEY prints each command line of KEY with %i, the program directory,
# the config directory and $MAINPID filled in.
bindir=$(grep -o '^ExecStart=[^ ]*/mux-%i' "$unit" | sed 's|^ExecStart=||; s|/mux-%i$||')
confdir=$(grep -o ' -c [^ ]*/%i\.conf' "$unit" | head -1 | sed 's|^ -c ||; s|/%i\.conf$||')
[ -n "$bindir" ] && [ -n "$confdir" ] || fail "cannot find the program and config paths in ExecStart"
cmd() { key "$1" | sed "s|$bindir/|$build/apps/|g; s|$confdir/|$work/|g; s|%i|echo|g; s|\\\$MAINPID|${server_pid:-none}|g"; }

echo "== ExecStartPre, ExecStart, ExecReload, KillSignal (instance echo)"
printf 'server = { listen = "127.0.0.1:0"; workers = 1; log_level = "info"; log_file = "%s"; };\n' \
    "$work/echo.log" > "$work/echo.conf"
eval "$(cmd ExecStartPre)" > "$work/pre.out" 2>&1 || { cat "$work/pre.out"; fail "ExecStartPre refused a valid config"; }
cp "$work/echo.conf" "$work/good.conf"
printf 'server = { workers = "many"; };\n' > "$work/echo.conf"
rc=0; eval "$(cmd ExecStartPre)" > "$work/pre.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { cat "$work/pre.out"; fail "ExecStartPre exited $rc on a broken config, expected 2"; }
cp "$work/good.conf" "$work/echo.conf"
start=$(cmd ExecStart)
coproc SERVER { eval "exec $start"; }
server_pid=$SERVER_PID
IFS= read -r -t 10 ready <&"${SERVER[0]}" || fail "no ready line from: $start"
echo "$ready"
while IFS= read -r line; do
    eval "$line" > "$work/reload.out" 2>&1 || { cat "$work/reload.out"; fail "ExecReload '$line' failed"; }
done < <(cmd ExecReload)
for _ in $(seq 100); do   # bounded: 100 x 50 ms
    grep -q "configuration reloaded" "$work/echo.log" && break
    sleep 0.05
done
grep -q "configuration reloaded" "$work/echo.log" || { cat "$work/echo.log"; fail "no reload after ExecReload"; }
t0=$(date +%s%N)
kill -s "$(key KillSignal)" "$server_pid"
rc=0; wait "$server_pid" || rc=$?
server_pid=""
took_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" -eq 0 ] || fail "exit $rc after KillSignal, expected 0"
[ "$took_ms" -lt $((stop_s * 1000)) ] || fail "stopping took $took_ms ms, TimeoutStopSec is ${stop_s}s"
echo "reloaded, stopped with exit 0 in $took_ms ms"

echo "== systemd-analyze verify"
command -v systemd-analyze > /dev/null || skip "systemd-analyze not installed: unit syntax not verified"
mkdir "$work/units"
# Programs from this build, so that verify's check that each command is
# executable looks at files that exist.
sed "s|$bindir/|$build/apps/|g" "$unit" > "$work/units/mux@.service"
for inst in echo httpd; do
    out=$(cd "$work/units" && systemd-analyze verify --man=no "mux@$inst.service" 2>&1) || true
    [ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify mux@$inst.service is not clean"; }
done
echo "systemd-analyze verify: clean for mux@echo and mux@httpd"
echo "unit check passed"
