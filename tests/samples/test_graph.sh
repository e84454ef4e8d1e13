#!/usr/bin/env bash
# The graph sample at a small size: BFS, PageRank and connected components,
# each with its code sent to the partitions and pulled to the caller, over 2
# and 3 server processes; the program checks every answer against Boost.Graph
# (exit 1 if any is wrong); each mobile run is paired with a pull run, back
# to back. `ferry bench graph --json` reports the parameters and one row per
# kernel; the mobile code also runs on trusted nodes; a SNAP file loads; bad
# options are refused.
set -euo pipefail
FERRY=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$FERRY" bench graph --help | grep -q -- "--edge-factor" || fail "bench graph --help"
out=$(timeout 120 "$FERRY" bench graph --servers 2 --scale 10 --roots 2 --rounds 2 2>&1) || fail "2 servers: exit $?"
echo "$out"
grep -Eq '^12 answers checked against Boost.Graph, 0 wrong$' <<<"$out" || fail "2 servers: answers"
grep -q 'BFS, TEPS, mobile vs pull' <<<"$out" || fail "2 servers: no TEPS row"
# The versions' measured runs are paired, back to back, the order alternating.
order=$(grep -Eo '(PageRank|connected components) \((mobile|pull)\), round [12]' <<<"$out" | tr '\n' ';')
[[ $order == "PageRank (mobile), round 1;PageRank (pull), round 1;connected components (mobile), round 1;connected components (pull), round 1;PageRank (pull), round 2;PageRank (mobile), round 2;connected components (pull), round 2;connected components (mobile), round 2;" ]] \
  || fail "2 servers: runs not paired in alternating order: $order"
bfs_order=$(grep -Eo 'BFS \((mobile|pull)\) from' <<<"$out" | grep -Eo 'mobile|pull' | tr '\n' ' ')
[[ $bfs_order == "mobile pull pull mobile " ]] || fail "2 servers: BFS searches not paired: $bfs_order"

out=$(timeout 120 "$FERRY" bench graph --servers 3 --scale 9 --edge-factor 8 --roots 1 --json) || fail "3 servers json: exit $?"
echo "$out"
grep -q '"parameters": {"servers": 3, "tls": "shm", "scale": 9, "edge_factor": 8' <<<"$out" || fail "json: parameters"
[[ $(grep -c '"name"' <<<"$out") -eq 4 ]] || fail "json: expected 4 rows"
grep -Eq '"(baseline|ferry)": 0(\.0+)?,' <<<"$out" && fail "json: a zero figure"
[[ $(grep -c '"ratio_range": \[' <<<"$out") -eq 4 ]] || fail "json: every row carries its pairs' ratio range"

# The mobile code on nodes of the trusted policy as well (--versions
# mobile-trusted: S more nodes, `--unchecked --unmetered`): its runs take
# turns with the others, and its rows put the checked nodes' figures
# against the trusted nodes'. The exit status says every answer was right.
# Its scratch directories go under $tmp (TMPDIR), so the nodes started for
# this run are told apart by their command lines while it runs.
TMPDIR=$tmp timeout 120 "$FERRY" bench graph --servers 2 --scale 9 --roots 1 --rounds 1 --versions mobile,mobile-trusted \
  --json >"$tmp/trusted.out" 2>"$tmp/trusted.err" &
bench=$!
: >"$tmp/trusted.nodes"
while kill -0 "$bench" 2>/dev/null; do
  pgrep -af -- " node .*--rendezvous $tmp/ferry-graph" >>"$tmp/trusted.nodes" || true
  sleep 0.05
done
wait "$bench" || fail "mobile-trusted: exit $?: $(tail -5 "$tmp/trusted.err")"
out=$(cat "$tmp/trusted.out")
echo "$out"
grep -q -- "--rendezvous $tmp/ferry-graph-trusted-.* --unchecked --unmetered" "$tmp/trusted.nodes" || fail "mobile-trusted: no trusted node seen"
grep -- "--rendezvous $tmp/ferry-graph-trusted-" "$tmp/trusted.nodes" | grep -qv -- "--unchecked --unmetered" && fail "mobile-trusted: a checked node in the trusted cluster"
grep -- "--rendezvous $tmp/ferry-graph-[a-zA-Z0-9]\{6\} " "$tmp/trusted.nodes" | grep -q -- "--unchecked" && fail "mobile-trusted: an unchecked node in the checked cluster"
grep -q 'server processes started (shm, trusted policy: --unchecked --unmetered)' "$tmp/trusted.err" || fail "mobile-trusted: no trusted nodes"
grep -Eq 'BFS \(mobile-trusted\) from [0-9]+: .* parent tree valid' "$tmp/trusted.err" || fail "mobile-trusted: no valid BFS"
[[ $(grep -c '"name"' <<<"$out") -eq 3 ]] || fail "mobile-trusted: expected 3 rows (BFS, PageRank, CC)"
grep -q '"name": "BFS, TEPS, checked vs trusted nodes (2 servers, shm)"' <<<"$out" || fail "mobile-trusted: no BFS row"
grep -q '"name": "PageRank, ms per iteration, checked vs trusted nodes (2 servers, shm)"' <<<"$out" || fail "mobile-trusted: no PageRank row"
grep -q 'mobile vs pull' <<<"$out" && fail "mobile-trusted: a pull row without pull runs"

# The mobile BFS's directions (--bfs): each one's parent trees pass the
# validation. Bottom-up goes no level top-down; top-down goes every level
# top-down whose (child, parent) pairs fit the partitions' outboxes, and at
# scale 10 over 2 servers the largest frontier's do not (its level falls
# back to bottom-up); auto goes the first level top-down.
for dir in top-down bottom-up auto; do
  out=$(timeout 120 "$FERRY" bench graph --servers 2 --scale 10 --roots 2 --kernels bfs --versions mobile --bfs "$dir" 2>&1) \
    || fail "--bfs $dir: exit $?"
  grep -E 'BFS \(mobile\) from' <<<"$out"
  grep -Eq '^2 answers checked against Boost.Graph, 0 wrong$' <<<"$out" || fail "--bfs $dir: answers"
  steps=$(grep -Eo '[0-9]+ of [0-9]+ steps top-down' <<<"$out")
  [[ $(wc -l <<<"$steps") -eq 2 ]] || fail "--bfs $dir: expected 2 measured searches: $steps"
  case $dir in
    bottom-up) grep -qv '^0 of' <<<"$steps" && fail "bottom-up went top-down: $steps" ;;
    top-down) awk '$1 < $3 {found=1} END {exit !found}' <<<"$steps" || fail "top-down: no level fell back: $steps"
              awk '$1 == 0 {bad=1} END {exit bad}' <<<"$steps" || fail "top-down: a search never went top-down: $steps" ;;
    auto) awk '$1 == 0 {bad=1} END {exit bad}' <<<"$steps" || fail "auto: a search never went top-down: $steps" ;;
  esac
done

# A SNAP edge list (comments, tabs, sparse ids): two triangles joined by a path, and a separate edge.
printf '# tiny\n# FromNodeId\tToNodeId\n10\t20\n20\t30\n30\t10\n30\t40\n40\t50\n50\t60\n60\t70\n70\t50\n900\t901\n' >"$tmp/tiny.txt"
out=$(timeout 60 "$FERRY" bench graph --servers 2 --snap "$tmp/tiny.txt" --roots 3) || fail "snap: exit $?"
grep -q 'vertices=9, edges=9' <<<"$out" || fail "snap: parameters"
grep -Eq '^[0-9]+ answers checked against Boost.Graph, 0 wrong$' <<<"$out" || fail "snap: answers"
printf '1 2\n3 x\n' >"$tmp/bad.txt"
set +e
err=$("$FERRY" bench graph --snap "$tmp/bad.txt" 2>&1); rc=$?
err2=$("$FERRY" bench graph --kernels bfs,sssp 2>&1); rc2=$?
set -e
[[ $rc -eq 1 ]] && grep -q 'bad.txt:2: expected two vertex ids' <<<"$err" || fail "bad SNAP line: status $rc: $err"
[[ $rc2 -ne 0 ]] && grep -qF -- '--kernels: sssp not in {bfs,pagerank,cc}' <<<"$err2" || fail "--kernels sssp: status $rc2: $err2"
echo "samples.graph: ok"
