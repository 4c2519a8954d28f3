#!/usr/bin/env bash
# doc.sh SOURCE_DIR - the configs docs/deploy.md shows are the ones the
# tests run, and valid: every line of tests/deploy/haproxy.cfg and
# tests/deploy/prometheus.yml appears in the document; `haproxy -c` accepts
# the haproxy config and `promtool check config` the scrape config (each
# skipped with a note when not installed). Registered as test_deploy_doc.
set -euo pipefail
src=$1
doc=$src/docs/deploy.md
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$doc" ] || fail "$doc missing"
for f in haproxy.cfg prometheus.yml; do
    n=0
    while IFS= read -r line; do
        [ -z "$line" ] && continue
        grep -qxF -- "$line" "$doc" || fail "docs/deploy.md lacks this line of tests/deploy/$f: $line"
        n=$((n + 1))
    done < "$src/tests/deploy/$f"
    echo "tests/deploy/$f: all $n lines in docs/deploy.md"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hap=$(command -v haproxy || true)
[ -z "$hap" ] && [ -x /usr/sbin/haproxy ] && hap=/usr/sbin/haproxy
if [ -n "$hap" ]; then
    MUX_FRONTEND=127.0.0.1:7000 MUX_BACKEND1=127.0.0.1:7001 MUX_BACKEND2=127.0.0.1:7002 \
        "$hap" -c -q -f "$src/tests/deploy/haproxy.cfg" || fail "haproxy -c refuses tests/deploy/haproxy.cfg"
    echo "haproxy -c: valid"
else
    echo "note: haproxy not installed, its config not checked"
fi
if command -v promtool > /dev/null; then
    promtool check config "$src/tests/deploy/prometheus.yml" > "$work/out" 2>&1 ||
        { cat "$work/out"; fail "promtool check config refuses tests/deploy/prometheus.yml"; }
    echo "promtool check config: valid"
else
    echo "note: promtool not installed, the scrape config not checked"
fi
