# Shell checks for test scripts; output follows tests/run's protocol.
# Source it: . "$TOP/tests/lib/check.sh"
: "${TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=build}"
BIN="$TOP/$BUILD/bin"
FIXTURES="$TOP/$BUILD/fixtures"
_check_failed=0

ok()   { echo "ok $1"; }
fail() { echo "FAIL $1: ${2:-}"; _check_failed=1; }
skip() { echo "skip $1: ${2:-}"; }
# check NAME CMD...: ok if the command succeeds, FAIL with its output otherwise.
check() {
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
# check_shown NAME CMD...: like check (FAIL shows the last 4 lines), and the
# command's whole output follows as comments either way.
check_shown() {
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$out" | tail -4 | tr '\n' ' ')"; fi
	echo "$out" | sed 's/^/# /'
}
finish() { exit $_check_failed; }
# A scratch directory removed at exit.
scratch() { SCRATCH=$(mktemp -d); trap 'rm -rf "$SCRATCH"' EXIT; }
