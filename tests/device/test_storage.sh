#!/usr/bin/env bash
# The storage node (docs/devices.md): `ferry launch --storage 1 --store-root DIR`
# attaches DIR/node1.img as a loop device (losetup --direct-io=on), the node
# keeps its objects on it; a 64 MiB object written in one launch comes back
# intact in the next (the node restarted), and a near-storage scan (mobile
# code streaming it with cx.read, O_DIRECT) returns the same checksum as the
# client computes over the bytes; with the device throttled (--storage-rate,
# blkio) the scan takes at least size / rate. Afterwards no loop device,
# mount or cgroup is left, also none of a launcher killed with SIGKILL (the
# next launch sweeps them).
# Exit 77 (skipped) with the reason where root or losetup is missing.
set -euo pipefail
FERRY=$1
CLIENT=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (loop devices, mount)"
for tool in losetup mkfs.ext4 blkid mount; do
  command -v $tool >/dev/null || skip "$tool is not installed"
done
[[ -e /dev/loop-control ]] || skip "no loop device support (/dev/loop-control)"

work=$(mktemp -d)
killed=
trap 'if [[ -n $killed ]]; then kill -9 $killed 2>/dev/null || true; fi; rm -rf "$work"' EXIT
image=$work/root/node1.img
# The launchers' mount directories go under $work (`ferry launch` makes them
# in TMPDIR), so what is left is this test's, whatever other tests run beside it.
export TMPDIR=$work

# 0. A launcher killed outright (SIGKILL) leaves its storage node's mount
#    and loop device; the next launch with storage nodes (step 1) removes them.
"$FERRY" launch -n 1 --storage 1 --storage-size 64MiB -- \
  sh -c 'grep -o "[^ ]*/ferry-storage-$PPID-[^ /]*" /proc/mounts > '"$work/killed.mount"'; exec sleep 120' 2>"$work/err0" &
killed=$!
for _ in $(seq 600); do [[ -s $work/killed.mount ]] && break; kill -0 $killed 2>/dev/null || break; sleep 0.1; done
[[ -s $work/killed.mount ]] || fail "the launch to kill did not mount its storage: $(cat "$work/err0")"
killed_mount=$(head -1 "$work/killed.mount")
killed_loop=$(awk -v m="$killed_mount/node0" '$2 == m { print $1 }' /proc/mounts)
killed_image=$(losetup -n -O BACK-FILE "$killed_loop" 2>/dev/null || true)
[[ $killed_image == /*/node0.img ]] || fail "no loop device behind $killed_mount/node0 ('$killed_loop', '$killed_image')"
kill -9 $killed
wait $killed 2>/dev/null || true
grep -q " $killed_mount/node0 " /proc/mounts || fail "the killed launcher's mount was already gone: nothing to sweep"

# 1. Write: the object lives on the storage node's device.
"$FERRY" launch -n 2 --storage 1 --store-root "$work/root" --storage-size 256MiB -- \
  sh -c 'pgrep -af "node --index 1 .*--kind storage .*--device /dev/loop" > '"$work/node"'; exec "$0" "$@"' \
  "$CLIENT" write 64 >"$work/out1" 2>"$work/err1" || fail "write launch: $(cat "$work/out1" "$work/err1")"
cat "$work/out1"
grep -q "^near-storage scan ok$" "$work/out1" || fail "near-storage scan after write: $(cat "$work/out1")"
[[ -s $work/node ]] || fail "the storage node did not run on a loop device"
[[ -z $(losetup -j "$image") ]] || fail "loop device still attached after the launch: $(losetup -j "$image")"
read -r _ id words sum < <(grep "^object " "$work/out1")
! grep -q " $killed_mount/" /proc/mounts || fail "the killed launcher's mount $killed_mount is still there"
[[ ! -e $killed_mount ]] || fail "the killed launcher's directory $killed_mount is still there"
[[ -z $(losetup -j "$killed_image") ]] || fail "the killed launcher's loop device is still attached to $killed_image"
rm -rf "$(dirname "$killed_image")"  # its rendezvous directory: nobody else removes it

# 2. Restart: the same image, a new node process; the object is intact.
#    This time the device is throttled to 64 MiB/s (--storage-rate, cgroup
#    v1 blkio): the near-storage scan of 64 MiB (O_DIRECT) cannot take less
#    than a second (90% of it allowed for the throttle's first slice).
"$FERRY" launch -n 2 --storage 1 --store-root "$work/root" --storage-rate 64MiB -- \
  sh -c 'g=/sys/fs/cgroup/blkio/ferry-$PPID-storage1; echo $g > '"$work/cgroup"';
         cat $g/blkio.throttle.read_bps_device $g/blkio.throttle.write_bps_device > '"$work/rule"';
         pgrep -f "node --index 1 .*--kind storage" | grep -qxf $g/cgroup.procs && echo admitted >> '"$work/rule"';
         exec "$0" "$@"' "$CLIENT" check "$id" "$words" "$sum" \
  >"$work/out2" 2>"$work/err2" || fail "check launch: $(cat "$work/out2" "$work/err2")"
cat "$work/out2" "$work/err2"
grep -q "^object came back intact$" "$work/out2" || fail "object after restart: $(cat "$work/out2")"
grep -q "^near-storage scan ok$" "$work/out2" || fail "near-storage scan after restart: $(cat "$work/out2")"
[[ -z $(losetup -j "$image") ]] || fail "loop device still attached after the second launch"
[[ $(grep -c "^7:[0-9]* 67108864$" "$work/rule") -eq 2 ]] || fail "no 64 MiB/s blkio rule on the loop device: $(cat "$work/rule")"
grep -qx admitted "$work/rule" || fail "the storage node was not in its blkio cgroup"
[[ ! -e $(cat "$work/cgroup") ]] || fail "the blkio cgroup $(cat "$work/cgroup") is left"
scan_ms=$(sed -n 's/^near-storage scan of 64 MiB .*: \([0-9]*\)\..*/\1/p' "$work/err2")
[[ -n $scan_ms && $scan_ms -ge 900 ]] || fail "a 64 MiB scan at 64 MiB/s took ${scan_ms:-?} ms: not throttled"
! grep -q " $work/" /proc/mounts || fail "a storage mount is left: $(grep " $work/" /proc/mounts)"
echo "ok: a 64 MiB object persisted on the storage node's loop device across a restart; near-storage scans agree"
