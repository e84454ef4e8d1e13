#!/usr/bin/env bash
# `ferry` command: --help/--version and `ferry objects` on a real directory.
set -euo pipefail
FERRY=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$FERRY" --help | grep -q "objects" || fail "--help does not list objects"
"$FERRY" --version | grep -Eq '^ferry [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
if "$FERRY" 2>/dev/null; then fail "no subcommand must fail"; fi

printf 'payload-bytes' > "$dir/in"
id=$("$FERRY" objects --store "$dir/s" put "$dir/in")
[[ $id =~ ^[0-9a-f]{32}$ ]] || fail "put printed '$id'"
"$FERRY" objects --store "$dir/s" ls | grep -q "^$id  *13 " || fail "ls does not show the object"
[[ $("$FERRY" objects --store "$dir/s" get "$id") == payload-bytes ]] || fail "get"
[[ $("$FERRY" objects --store "$dir/s" get "$id" --offset 8 --length 5) == bytes ]] || fail "ranged get"

# Errors: typed message and non-zero exit, never a crash.
set +e
"$FERRY" objects --store "$dir/s" get 0123 2>"$dir/err"; rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q "invalid_argument" "$dir/err" || fail "bad id not rejected (rc=$rc)"
set +e
"$FERRY" objects --store "$dir/s" get --offset 100 "$id" 2>"$dir/err"; rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q "out_of_bounds" "$dir/err" || fail "out of range not rejected"

# Damage the file: ls reports it and exits 3.
printf 'X' | dd of="$dir/s/$id.fobj" bs=1 seek=70 conv=notrunc status=none
set +e
"$FERRY" objects --store "$dir/s" ls > "$dir/out"; rc=$?
set -e
[[ $rc -eq 3 ]] && grep -q "DAMAGED: corrupt" "$dir/out" || fail "damage not reported (rc=$rc)"

"$FERRY" objects --store "$dir/s" rm "$id"
[[ -z $("$FERRY" objects --store "$dir/s" ls) ]] || fail "rm"
echo "cli.objects: ok"
