#!/usr/bin/env bash
# `ferry bench jit` runs end to end (one sample per case: this checks that
# every case is measured and reported, not how fast; figures are in
# docs/jit.md), and its disk cache's scratch directory is gone afterwards,
# whether the run finished or failed.
FERRY=$1
# The bench makes its scratch directory in TMPDIR: this test's own ($work).
source "$(dirname "$0")/lib.sh"

"$FERRY" bench jit --help | grep -q -- "--samples" || fail "bench jit --help"
out=$("$FERRY" bench jit --samples 1 --json)
echo "$out"
rows=$(grep -c '"name"' <<<"$out")
[[ $rows -eq 29 ]] || fail "expected 29 cases, got $rows"
for kernel in small large chase; do
  for c in "cold load, fast codegen" "cold load, optimized" "memory cache relink (after unload)" \
           "disk cache hit after restart" "per call (optimized tier vs native)"; do
    line=$(grep -F "\"name\": \"$kernel $c" <<<"$out") || fail "no '$kernel $c' case"
    grep -Eq '"baseline": [0-9.]+(e[-+][0-9]+)?, "ferry": [0-9.]+(e[-+][0-9]+)?, "ratio": [0-9.]+(e[-+][0-9]+)?, "unit": "(ms|ns)"' <<<"$line" \
      || fail "malformed row: $line"
    grep -Eq '"(baseline|ferry)": 0(\.0+)?,' <<<"$line" && fail "zero figure: $line"
  done
done
[[ -z $(ls -A "$work") ]] || fail "left behind: $(ls -A "$work")"

# A run that fails part-way (no compile helper for the untrusted cases, which
# come last) says why, exits 1, and still removes its directory; so does one
# that has no temporary directory to work in (not an "internal error").
set +e
err=$(FERRY_JIT_CHECK=/nonexistent/ferry-jit-check "$FERRY" bench jit --samples 1 2>&1 >/dev/null); rc=$?
"$FERRY" bench jit --samples 0 >/dev/null 2>&1; rc_samples=$?
no_tmp=$(TMPDIR=$work/missing "$FERRY" bench jit --samples 1 2>&1 >/dev/null); rc_tmp=$?
set -e
echo "$no_tmp"
[[ $rc_tmp -eq 1 ]] || fail "TMPDIR missing: expected exit 1, got $rc_tmp"
grep -q "^ferry: bench jit: .*temp_directory_path" <<<"$no_tmp" || fail "TMPDIR missing: no message saying so"
echo "$err"
[[ $rc -eq 1 ]] || fail "without its helper: expected exit 1, got $rc"
grep -q "ferry: bench jit: " <<<"$err" || fail "without its helper: no message"
[[ -z $(ls -A "$work") ]] || fail "left behind after a failed run: $(ls -A "$work")"
[[ $rc_samples -ne 0 ]] || fail "--samples 0 must fail"
echo "cli.bench_jit: ok"
