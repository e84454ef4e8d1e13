#!/usr/bin/env bash
# `ferry sign`: keys, signing a built program in place, checking it, and
# nodes started `ferry launch --untrusted --trust-keys DIR` running only the
# programs signed by a key in DIR.
set -euo pipefail
FERRY=$1
DEMO=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$FERRY" sign --help | grep -q -- "--keygen" || fail "sign --help"
mkdir "$work/trusted"
"$FERRY" sign --keygen "$work/trusted/ci" | grep -q "wrote .*ci.key" || fail "keygen"
"$FERRY" sign --keygen "$work/stranger" >/dev/null
[[ $(stat -c %a "$work/trusted/ci.key") == 600 ]] || fail "the secret key is readable by others"
grep -q "^ferry-ed25519-public [0-9a-f]\{64\}$" "$work/trusted/ci.pub" || fail "public key file format"
if "$FERRY" sign --keygen "$work/trusted/ci" 2>/dev/null; then fail "keygen overwrote a key"; fi

for v in signed stranger unsigned; do cp "$DEMO" "$work/demo-$v"; done
"$FERRY" sign --key "$work/trusted/ci.key" "$work/demo-signed" | tee /dev/stderr | grep -q "signed [1-9][0-9]* code object" \
  || fail "sign"
"$FERRY" sign --key "$work/stranger.key" "$work/demo-stranger" >/dev/null
[[ $(stat -c %s "$DEMO") == $(stat -c %s "$work/demo-signed") ]] || fail "signing changed the program's size"
cmp -s "$DEMO" "$work/demo-signed" && fail "signing changed nothing"

fp=$(sed 's/^ferry-ed25519-public \(.\{16\}\).*/\1/' "$work/trusted/ci.pub")
"$FERRY" inspect "$work/demo-signed" | grep -q "signed  by key $fp" || fail "inspect does not name the signer $fp"
"$FERRY" inspect "$work/demo-unsigned" | grep -q "signed  no" || fail "inspect does not say unsigned"

check() {  # check FILE EXPECTED-RC PATTERN
  local rc=0
  "$FERRY" sign --check --trust-keys "$work/trusted" "$1" >"$work/out" 2>&1 || rc=$?
  [[ $rc == "$2" ]] || fail "check $1: rc $rc, expected $2: $(cat "$work/out")"
  grep -q -- "$3" "$work/out" || fail "check $1 does not say '$3': $(cat "$work/out")"
}
check "$work/demo-signed" 0 "accepted"
check "$work/demo-unsigned" 1 "unsigned_code"
check "$work/demo-stranger" 1 "untrusted_signer"
# A byte of a signature flipped in place (the last byte of the section's last record).
python3 - "$work/demo-signed" "$work/demo-tampered" <<'PY'
import subprocess, sys
src, dst = sys.argv[1:]
data = bytearray(open(src, 'rb').read())
out = subprocess.run(['readelf', '-SW', src], capture_output=True, text=True).stdout
line = next(l for l in out.splitlines() if ' ferry_code ' in l)
f = line.split(']', 1)[1].split()
off, size = int(f[3], 16), int(f[4], 16)
data[off + size - 1] ^= 0x01
open(dst, 'wb').write(bytes(data))
PY
check "$work/demo-tampered" 1 "bad_signature"

# Untrusted nodes need keys, and run only what a trusted key signed.
rc=0; "$FERRY" launch -n 2 --untrusted -- true 2>"$work/err" || rc=$?
[[ $rc -ne 0 ]] && grep -q -- "--untrusted needs --trust-keys" "$work/err" || fail "--untrusted without keys started"
"$FERRY" launch -n 3 --untrusted --trust-keys "$work/trusted" -- "$work/demo-signed" | grep -q "^ok: the chase forwarded" \
  || fail "signed demo on untrusted nodes"
for v in unsigned stranger; do
  rc=0; "$FERRY" launch -n 3 --untrusted --trust-keys "$work/trusted" -- "$work/demo-$v" >"$work/out" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || fail "demo-$v ran on nodes that do not trust it"
  want=unsigned_code; [[ $v == stranger ]] && want=untrusted_signer
  grep -q "$want" "$work/out" || fail "demo-$v: the error does not say $want: $(tail -5 "$work/out")"
done
echo "cli.sign: ok"
