#!/usr/bin/env bash
# The pointer chase sample at a small size: every default mode (ferry, am,
# get, ferry-trusted) over 1 and 2 servers over shm and 2 over tcp, in
# interleaved rounds, must reach the endpoint the local chase reaches (the
# program exits 1 on any wrong endpoint), and `ferry bench chase --json`
# reports one row per depth and baseline plus the first chase; with
# --preload the first chase runs code preloaded on every node.
set -euo pipefail
FERRY=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo

help=$("$FERRY" bench chase --help) || fail "bench chase --help: exit $?"
grep -q -- "--servers" <<<"$help" || fail "bench chase --help"
# Bad lists are refused before any process starts, naming the bad value.
refused() {  # refused <what the message must say> <args...>
  local want=$1 msg
  shift
  msg=$("$FERRY" bench chase "$@" 2>&1) && fail "bench chase $*: accepted"
  grep -qF -- "$want" <<<"$msg" || fail "bench chase $*: said '$msg', not '$want'"
}
refused "Value 12abc not in range" --depths 1,12abc
refused "Value 0 not in range" --depths 0
refused "bogus not in {ferry,am,get" --modes ferry,bogus
refused "ifunc-nodes needs ferry" --modes am,ifunc-nodes
small=(--log2-entries 12 --depths 1,16,256 --chases 12 --seconds-per-case 0.1)
for run in "shm 1" "shm 2" "tcp 2"; do
  read -r tls servers <<<"$run"
  out=$(timeout 120 "$FERRY" bench chase --tls $tls --servers $servers "${small[@]}") \
    || fail "$tls, $servers servers: exit $?"
  echo "$out"
  grep -Eq '^[0-9]+ chases, 0 wrong endpoints$' <<<"$out" || fail "$tls, $servers servers: wrong endpoints"
  # every depth row ends with its rounds' lowest and highest ratio
  [[ $(grep -Ec '^depth [0-9]+ chase, .* [0-9.]+-[0-9.]+$' <<<"$out") -eq 9 ]] || fail "$tls, $servers servers: rounds' ratios"
done
out=$(timeout 120 "$FERRY" bench chase --servers 2 "${small[@]}" --json) || fail "json run"
echo "$out"
[[ $(grep -c '"name"' <<<"$out") -eq 10 ]] || fail "json: expected 10 rows (first chase + 3 depths x am, get, trusted)"
grep -Eq '"name": "depth 256 chase, ferry vs get' <<<"$out" || fail "json: no depth-256 get row"
grep -Eq '"name": "depth 16 chase, ferry vs trusted nodes' <<<"$out" || fail "json: no depth-16 trusted row"
grep -Eq '"rounds": 5' <<<"$out" || fail "json: no rounds parameter"
grep -Eq '"(baseline|ferry)": 0(\.0+)?,' <<<"$out" && fail "json: a zero figure"
# make bench's tools on that report: CSV, the targets' summary (ferry's rate
# over each baseline's: baseline us / ferry us of the same row), its tables
# and its plot.
bench_tools=$(cd "$(dirname "$0")/../../tools/bench" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$bench_tools/bench_csv.py" <<<"$out" >"$tmp/chase.csv" || fail "bench_csv.py"
python3 "$bench_tools/chase_targets.py" "2 servers shm=$tmp/chase.csv" >"$tmp/targets.csv" || fail "chase_targets.py"
cat "$tmp/targets.csv"
[[ $(head -1 "$tmp/targets.csv") == "depth,am 2 servers shm,am 2 servers shm low,am 2 servers shm high,get 2 servers shm,get 2 servers shm low,get 2 servers shm high" ]] \
  || fail "targets: header"
[[ $(tail -n +2 "$tmp/targets.csv" | cut -d, -f1 | tr '\n' ' ') == "1 16 256 " ]] || fail "targets: depths"
# Each depth row of the report carries its rounds' range (the lowest and
# highest ferry / baseline of the 5 rounds, which ran both back to back);
# with an odd number of rounds the ratio of the two medians lies within it.
# The summary's rate ratio is baseline / ferry of the same row, its range
# the rounds' inverted.
python3 - "$tmp/chase.csv" "$tmp/targets.csv" <<'PY' || fail "targets: a ratio or range does not match its row"
import csv, sys
rows = {r[0]: r for r in csv.reader(l for l in open(sys.argv[1]) if not l.startswith("#"))}
for name, r in rows.items():
    if name.startswith("depth "):
        low, high, ratio = float(r[5]), float(r[6]), float(r[3])
        assert 0 < low <= high and low * 0.999 <= ratio <= high * 1.001, (name, low, ratio, high)
    elif name.startswith("first "):
        assert r[5] == r[6] == "", name  # one measurement: no rounds
summary = list(csv.reader(open(sys.argv[2])))[1:]
close = lambda a, b: abs(a - b) <= 1e-3 * b
for depth, am, am_low, am_high, get, get_low, get_high in summary:
    for base, got, low, high in (("am", am, am_low, am_high), ("get", get, get_low, get_high)):
        r = next(v for k, v in rows.items() if k.startswith(f"depth {depth} chase, ferry vs {base} "))
        assert close(float(got), float(r[1]) / float(r[2])), (depth, base, got)
        assert close(float(low), 1 / float(r[6])) and close(float(high), 1 / float(r[5])), (depth, base, low, high)
PY
# (captured first: grep -q leaving early would break the writer's pipe, a
# failure under pipefail)
markdown=$(python3 "$bench_tools/chase_targets.py" --markdown "2 servers shm=$tmp/chase.csv") || fail "targets: --markdown"
grep -Eq '^\| 256 \| (\*\*)?[0-9.]+(\*\*)?<br><sub>[0-9.]+–[0-9.]+</sub> \|$' <<<"$markdown" \
  || fail "targets: no markdown row for depth 256"
python3 "$bench_tools/chase_targets.py" "a,b=$tmp/chase.csv" >/dev/null 2>&1 && fail "targets: a label with a comma"
if command -v gnuplot >/dev/null; then
  "$bench_tools/plot_chase_targets.sh" "$tmp/targets.csv" "$tmp/targets.png" || fail "plot_chase_targets.sh"
  [[ $(head -c 4 "$tmp/targets.png" | tail -c 3) == PNG ]] || fail "plot_chase_targets.sh: no PNG"
fi
# --preload: rt.preload ships and compiles the chase on both nodes first; the
# first chase then runs resident code, and every endpoint is still right.
out=$(timeout 120 "$FERRY" bench chase --servers 2 --modes ferry,am,get --preload "${small[@]}") || fail "--preload run"
echo "$out"
grep -q '^first ferry chase after rt.preload on every node' <<<"$out" || fail "--preload: no first-chase-after-preload row"
grep -q 'first chase <= 1.5 ms (not measured: --preload)' <<<"$out" || fail "--preload: the cold target must not be judged"
grep -Eq '^[0-9]+ chases, 0 wrong endpoints$' <<<"$out" || fail "--preload: wrong endpoints"
# One mode alone works.
timeout 60 "$FERRY" bench chase --servers 2 --modes ferry "${small[@]}" | grep -q ' 0 wrong endpoints' || fail "ferry alone"
echo "samples.pointer_chase: ok"
