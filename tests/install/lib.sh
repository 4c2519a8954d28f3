# lib.sh - sourced by the install tests: start a server, talk to it, stop it.
# Every server is started by the caller's shell, found through its ready
# line and stopped by its PID; every read has a timeout.

SEED=${MUX_TEST_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
echo "== seed $SEED (MUX_TEST_SEED=$SEED reproduces)"

server_pid=""
stop_server() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null; server_pid=""; }

# A random line of 1..60 printable characters without leading or trailing
# spaces (read strips those).
random_line() {
    local chars='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_=+()[]{}<>/|@#%^&*~'
    local n=$((RANDOM % 60 + 1)) s="" i
    for ((i = 0; i < n; i++)); do s+=${chars:RANDOM % ${#chars}:1}; done
    s=${s# }; s=${s% }
    printf '%s' "${s:-x}"
}

reverse() {
    local s=$1 r="" i
    for ((i = ${#s} - 1; i >= 0; i--)); do r+=${s:i:1}; done
    printf '%s' "$r"
}

# roundtrip MODE CMD...: starts CMD (a mux server) on a free loopback port
# with no environment but PATH, sends 5 random lines and checks each reply
# (MODE echo: the same line, rev: reversed), then stops it with SIGTERM and
# expects the graceful exit status 0.
roundtrip() {
    local mode=$1 ready port line want got i
    shift
    coproc SERVER { exec env -i PATH=/usr/local/bin:/usr/bin:/bin "$@" -l 127.0.0.1:0 -w 1; }
    server_pid=$SERVER_PID
    IFS= read -r -t 10 ready <&"${SERVER[0]}" || { echo "no ready line from $1"; return 1; }
    echo "$ready"
    port=${ready#listening on 127.0.0.1:}
    port=${port%% *}
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    for ((i = 0; i < 5; i++)); do
        line=$(random_line)
        want=$line
        [ "$mode" = rev ] && want=$(reverse "$line")
        printf '%s\n' "$line" >&3
        IFS= read -r -t 5 got <&3 || { echo "no reply to '$line'"; return 1; }
        [ "$got" = "$want" ] || { echo "sent '$line', got '$got', expected '$want'"; return 1; }
    done
    exec 3>&-
    kill -TERM "$server_pid"
    local rc=0
    wait "$server_pid" || rc=$?
    server_pid=""
    [ "$rc" -eq 0 ] || { echo "$1 exited $rc after SIGTERM, expected 0"; return 1; }
}

# skip MESSAGE: ctest reports the test as skipped (SKIP_RETURN_CODE 77).
skip() { echo "SKIPPED: $*"; exit 77; }
