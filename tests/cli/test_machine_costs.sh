#!/usr/bin/env bash
# ferry-machine-costs (make bench's machine.txt): four lines, each a positive
# figure in microseconds (or, for the wake-up on a one-core machine, "not
# measured here"); a process switch costs more than the system call it
# starts with; --help explains, anything else is refused with status 2.
set -euo pipefail
COSTS=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(timeout 50 "$COSTS") || fail "exit $?"
echo "$out"
[[ $(wc -l <<<"$out") -eq 4 ]] || fail "expected 4 lines"
figure() { grep "^$1: " <<<"$out" | sed -nE 's/^[^:]+: ([0-9]+\.[0-9]+) us \(.*\)$/\1/p'; }
call=$(figure "system call")
switch=$(figure "switch between two processes on one core")
[[ -n $call && -n $switch ]] || fail "no system call or switch figure"
awk -v c="$call" -v s="$switch" 'BEGIN { exit !(c > 0 && s > c) }' || fail "switch $switch us not above system call $call us"
[[ -n $(figure "sched_yield with nothing else to run") ]] || fail "no lone yield figure"
if [[ $(nproc) -ge 2 ]]; then
  [[ -n $(figure "wake-up of a blocked process on another core") ]] || fail "no wake-up figure"
else
  grep -q "^wake-up of a blocked process on another core: not measured here (one core)$" <<<"$out" || fail "one core"
fi
"$COSTS" --help | grep -q "system call" || fail "--help"
set +e
"$COSTS" --bogus >/dev/null 2>&1; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "--bogus: expected status 2, got $rc"
echo "cli.machine_costs: ok"
