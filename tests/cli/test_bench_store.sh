#!/usr/bin/env bash
# `ferry bench store` runs end to end on a small object (this checks that
# every case is measured and reported, not how fast: figures are in
# docs/object-format.md), leaves nothing in its scratch directory or in a
# --dir it was given beyond what was there, and fails with a message on a
# directory it cannot use.
FERRY=$1
source "$(dirname "$0")/lib.sh"  # fail, and $work: this test's TMPDIR

"$FERRY" bench store --help | grep -q -- "--object-mib" || fail "bench store --help"
out=$("$FERRY" bench store --object-mib 4 --rounds 2 --json)
echo "$out"
rows=$(grep -c '"name"' <<<"$out")
[[ $rows -eq 4 ]] || fail "expected 4 cases, got $rows"
for c in "fill 4 MiB in 1024 KiB durable writes" "8-byte durable write into 4 MiB" "seal after a call's write, 4 MiB" \
  "seal of the whole image after a write, 4 MiB"; do
  line=$(grep -F "\"name\": \"$c\"" <<<"$out") || fail "no '$c' case"
  grep -Eq '"baseline": [0-9.]+(e[-+][0-9]+)?, "ferry": [0-9.]+(e[-+][0-9]+)?, "ratio": [0-9.]+(e[-+][0-9]+)?, "unit": "ms", "ratio_range": \[' <<<"$line" \
    || fail "malformed row: $line"
  grep -Eq '"(baseline|ferry)": 0(\.0+)?,' <<<"$line" && fail "zero figure: $line"
done
[[ -z $(ls -A "$work") ]] || fail "left behind: $(ls -A "$work")"

# A directory of the caller's: used, and left as it was found.
mkdir "$work/mine" && touch "$work/mine/keep"
"$FERRY" bench store --dir "$work/mine" --object-mib 1 --rounds 1 >/dev/null
[[ $(ls -A "$work/mine") == keep ]] || fail "--dir left: $(ls -A "$work/mine")"
rm -rf "$work/mine"

# A directory that cannot be made: a message and exit 1.
touch "$work/file"
set +e
err=$("$FERRY" bench store --dir "$work/file/sub" --object-mib 1 --rounds 1 2>&1 >/dev/null); rc=$?
set -e
echo "$err"
[[ $rc -eq 1 ]] || fail "unusable --dir: expected exit 1, got $rc"
grep -q "^ferry: bench store: " <<<"$err" || fail "unusable --dir: no message"
echo "cli.bench_store: ok"
