#!/usr/bin/env bash
# man.sh BUILD_DIR - the generated man pages (BUILD_DIR/man) are valid roff
# without a groff warning, and each built program's man page documents every
# long option its --help lists, so the pages cannot drift from the programs.
# Registered as test_man.
set -euo pipefail
build=$1
command -v groff > /dev/null || { echo "groff not found (Debian: groff-base, with man-db)"; exit 1; }
fail=0
pages=("$build"/man/man*/*)
[ -e "${pages[0]}" ] || { echo "no man pages under $build/man"; exit 1; }
for page in "${pages[@]}"; do
    warnings=$(groff -man -ww -z "$page" 2>&1)
    [ -z "$warnings" ] || { echo "$page:"; echo "$warnings"; fail=1; }
done
[ "$fail" -ne 0 ] || echo "${#pages[@]} pages lint clean"

checked=0
for bin in "$build"/apps/mux-* "$build"/tools/mux-stress; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    prog=$(basename "$bin")
    page=$build/man/man1/$prog.1
    [ -f "$page" ] || { echo "$prog has no man page (docs/man/$prog.1.in)"; fail=1; continue; }
    opts=$("$bin" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
    [ -n "$opts" ] || { echo "$prog --help lists no long options"; fail=1; continue; }
    for opt in $opts; do
        roff=${opt//-/\\-}           # --log-level is written \-\-log\-level in roff
        grep -qF -- "$roff" "$page" || { echo "$prog: $opt is in --help but not in $prog.1"; fail=1; }
    done
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "no programs found under $build"; exit 1; }
[ "$fail" -ne 0 ] || echo "$checked programs: every --help option is in the man page"
exit $fail
