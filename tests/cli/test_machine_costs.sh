#!/usr/bin/env bash
# ferry-machine-costs (make bench's machine.txt): five lines, each a positive
# figure in microseconds (or, for the two cases between cores on a one-core
# machine, "not measured here"); a process switch costs more than the system
# call it starts with, a cache line handed between spinning cores less than
# waking a blocked process; --help explains, anything else is refused with
# status 2.
set -euo pipefail
COSTS=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(timeout 50 "$COSTS") || fail "exit $?"
echo "$out"
[[ $(wc -l <<<"$out") -eq 5 ]] || fail "expected 5 lines"
figure() { grep "^$1: " <<<"$out" | sed -nE 's/^[^:]+: ([0-9]+\.[0-9]+) us \(.*\)$/\1/p'; }
call=$(figure "system call")
switch=$(figure "switch between two processes on one core")
[[ -n $call && -n $switch ]] || fail "no system call or switch figure"
awk -v c="$call" -v s="$switch" 'BEGIN { exit !(c > 0 && s > c) }' || fail "switch $switch us not above system call $call us"
[[ -n $(figure "sched_yield with nothing else to run") ]] || fail "no lone yield figure"
if [[ $(nproc) -ge 2 ]]; then
  wake=$(figure "wake-up of a blocked process on another core")
  line=$(figure "cache line handed from one core to the other")
  [[ -n $wake && -n $line ]] || fail "no wake-up or cache line figure"
  awk -v l="$line" -v w="$wake" 'BEGIN { exit !(l > 0 && l < w) }' || fail "cache line $line us not below wake-up $wake us"
else
  grep -q "^wake-up of a blocked process on another core: not measured here (one core)$" <<<"$out" || fail "one core"
  grep -q "^cache line handed from one core to the other: not measured here (one core)$" <<<"$out" || fail "one core: line"
fi
"$COSTS" --help | grep -q "system call" || fail "--help"
set +e
"$COSTS" --bogus >/dev/null 2>&1; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "--bogus: expected status 2, got $rc"
echo "cli.machine_costs: ok"
