#!/usr/bin/env bash
# symbolize --build-id and symbolize pprof fetch debuginfo through
# libdebuginfod from a real debuginfod-lite: with --server, with
# $DEBUGINFOD_URLS alone, into the client's own cache; a build-ID no server
# has is one clear error line.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
S=$BIN/symbolize
FX=$FIXTURES/symbolizer
export XDG_CACHE_HOME=$SCRATCH/xdg
# The unstripped fixture lives only in the server's scan, never in /usr/lib/debug.
mkdir -p "$SCRATCH/served"
cp "$FX/c-O2-dw4" "$SCRATCH/served/"
dil_start A --data "$SCRATCH/data" --scan "$SCRATCH/served" --rescan 0
ID=$(build_id_of "$FX/c-O2-dw4")
wait_for "$A_URL/buildid/$ID/debuginfo" || fail fetch_scan "not indexed"
nm --defined-only "$FX/c-O2-dw4" | awk '$2 ~ /[tT]/ { print "0x" $1 }' | head -40 >"$SCRATCH/addrs"
"$S" -e "$FX/c-O2-dw4" --inlines <"$SCRATCH/addrs" >"$SCRATCH/want"
[[ -s $SCRATCH/want ]] || fail fetch_reference "no reference output"

"$S" --build-id "$ID" --server "$A_URL" --inlines --no-cache <"$SCRATCH/addrs" >"$SCRATCH/got1" \
	2>"$SCRATCH/err1"
check fetch_with_server cmp "$SCRATCH/got1" "$SCRATCH/want"
n=$(find "$DEBUGINFOD_CACHE_PATH" -name debuginfo -type f 2>/dev/null | wc -l)
(( n >= 1 )) && ok fetch_in_client_cache || fail fetch_in_client_cache "nothing under $DEBUGINFOD_CACHE_PATH"

# $DEBUGINFOD_URLS alone, as gdb and perf use it (a fresh client cache).
DEBUGINFOD_URLS=$A_URL DEBUGINFOD_CACHE_PATH=$SCRATCH/cache2 \
	"$S" --build-id "$ID" --inlines --no-cache <"$SCRATCH/addrs" >"$SCRATCH/got2" 2>"$SCRATCH/err2"
check fetch_with_debuginfod_urls cmp "$SCRATCH/got2" "$SCRATCH/want"

# A build-ID nobody has: exit 1, one line.
echo 0x1000 | "$S" --build-id 0123456789abcdef0123456789abcdef01234567 --server "$A_URL" \
	>/dev/null 2>"$SCRATCH/err3"; rc=$?
[[ $rc == 1 && $(wc -l <"$SCRATCH/err3") == 1 ]] && ok fetch_unknown_one_line \
	|| fail fetch_unknown_one_line "rc $rc: $(cat "$SCRATCH/err3")"
# No server at all: says so.
echo 0x1000 | env -u DEBUGINFOD_URLS "$S" --build-id 0123456789abcdef0123456789abcdef01234567 \
	>/dev/null 2>"$SCRATCH/err4"; rc=$?
[[ $rc == 1 ]] && grep -q "DEBUGINFOD_URLS" "$SCRATCH/err4" && ok fetch_no_server_says_so \
	|| fail fetch_no_server_says_so "rc $rc: $(cat "$SCRATCH/err4")"
finish
