#!/usr/bin/env bash
# record.sh FERRY OUT-DIR — what `make bench` runs: each benchmark below with
# --json, converted to OUT-DIR/NAME.csv (bench_csv.py) and plotted to
# NAME.png (plot.sh); OUT-DIR/machine.txt says where.
# Sized to take under five minutes on a 2-core machine (devices included).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: record.sh FERRY OUT-DIR" >&2; exit 2; }
ferry=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
json=$(mktemp)
trap 'rm -f "$json"' EXIT
export UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo} FI_TCP_IFACE=${FI_TCP_IFACE:-lo}

{
  echo "measured: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
  echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"
# What waiting between processes costs here (every hop pays some of it when
# processes outnumber cores: the chase's 4-server runs).
ferry_dir=$(dirname "$(readlink -f "$ferry")")
if [[ -x "$ferry_dir/ferry-machine-costs" ]]; then
  echo "kernel costs (ferry-machine-costs):"
  "$ferry_dir/ferry-machine-costs" | sed 's/^/  /'
fi >>"$out/machine.txt"

# The machine's speed as a benchmark begins: the time a cache line takes
# between the two cores tells its fast minutes from its slow ones
# (docs/bench/README.md, "The machine's two speeds").
line_us() {
  [[ -x "$ferry_dir/ferry-machine-costs" ]] || return 0
  "$ferry_dir/ferry-machine-costs" | sed -n 's/^cache line handed from one core to the other: \([0-9.]*\) us.*/\1/p'
}

# NAME TITLE BASELINE-LABEL [MEASURED-LABEL] -- COMMAND...
record() {
  local name=$1 title=$2 base=$3 measured=ferry
  shift 3
  if [[ $1 != -- ]]; then
    measured=$1
    shift
  fi
  shift  # --
  echo "make bench: $name: $*" >&2
  local line
  line=$(line_us)
  [[ -n $line ]] && echo "$name: began with a cache line between the cores at $line us" >>"$out/machine.txt"
  "$@" --json >"$json"
  python3 "$here/bench_csv.py" <"$json" >"$out/$name.csv"
  "$here/plot.sh" "$out/$name.csv" "$out/$name.png" "$title" "$base" "$measured"
}

# The pointer chase with 1, 2 and 4 servers over UCX shm and tcp, one
# NAME.csv and bar plot each; then both rate targets of every run side by
# side: chase-targets.csv, .png (lines by depth) and .md (the tables).
targets=()
for tls in shm tcp; do
  for servers in 1 2 4; do
    label="$servers servers $tls"
    [[ $servers -eq 1 ]] && label="1 server $tls"
    record "chase-$tls-${servers}s" "Pointer chase, $label: us per chase (lower is better)" "am / get" -- \
      "$ferry" bench chase --servers "$servers" --tls "$tls"
    targets+=("$label=$out/chase-$tls-${servers}s.csv")
  done
done
python3 "$here/chase_targets.py" "${targets[@]}" >"$out/chase-targets.csv"
python3 "$here/chase_targets.py" --markdown "${targets[@]}" >"$out/chase-targets.md"
"$here/plot_chase_targets.sh" "$out/chase-targets.csv" "$out/chase-targets.png"
record graph-s16-2servers "Graph kernels, Kronecker scale 16, 2 servers, shm: mobile code vs pull" "pull" -- \
  "$ferry" bench graph --scale 16 --servers 2 --roots 4
record graph-s16-4servers "Graph kernels, Kronecker scale 16, 4 servers, shm: mobile code vs pull" "pull" -- \
  "$ferry" bench graph --scale 16 --servers 4 --roots 4
# The same mobile code on checked nodes (the default) and on trusted ones
# (--unchecked --unmetered): what bounds checks and fuel cost a kernel.
record graph-s16-2servers-trusted "Graph kernels, Kronecker scale 16, 2 servers, shm: checked vs trusted nodes" "trusted" -- \
  "$ferry" bench graph --scale 16 --servers 2 --roots 4 --versions mobile,mobile-trusted
# The chase through ifunc messages: the UCX ifunc compat library on the bare
# servers, and <ferry/ifunc.h> on the ferry nodes, against am, get and
# ferry's forwarded call in the same run (docs/ifunc.md).
record ifunc-shm-2s "Pointer chase through ifunc messages, 2 servers shm: us per chase (lower is better)" "am / get / ferry" \
  "ifunc (compat, then <ferry/ifunc.h>)" -- \
  "$ferry" bench ifunc --servers 2 --tls shm
# Placement: Alice/Bob/Carol, fixed vs automatic; and the seed's Figure 3,
# round trips per call vs cache staleness (its own CSV and plot).
record placement "Alice/Bob/Carol: fixed vs automatic placement, 3 nodes, shm" "fixed" -- \
  "$ferry" bench placement --csv "$out/placement-staleness.csv"
"$here/plot_staleness.sh" "$out/placement-staleness.csv" "$out/placement-staleness.png"
# Devices: needs root, qemu-aarch64 and the aarch64 node (make build-aarch64).
if [[ $(id -u) -eq 0 ]] && command -v qemu-aarch64 >/dev/null && [[ -x "$ferry_dir/../aarch64/bin/ferry" ]]; then
  record device "DPU (qemu cortex-a72) vs host calls; near-storage scan vs pull" "host / pull" -- \
    "$ferry" bench device --scan-mib 64,256
else
  echo "make bench: device: skipped (needs root, qemu-aarch64 and make build-aarch64)" >&2
  echo "device: not recorded in this run (device.csv and .png, if present, are from an earlier one)" >>"$out/machine.txt"
fi
echo "make bench: wrote $out/*.csv, *.png, machine.txt" >&2
