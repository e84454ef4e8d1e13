# Shared by the CLI tests (sourced): strict mode, `fail`, and a scratch
# directory that is the test's TMPDIR and is removed when it exits.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
