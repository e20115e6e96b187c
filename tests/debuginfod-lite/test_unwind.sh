#!/usr/bin/env bash
# GET /buildid/<id>/unwind: byte-identical to `unwind-compile X -o T`,
# compiled once and cached, ETag + If-None-Match.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
dil_start A --data "$SCRATCH/data" --scan "$LIBC" --scan "$FIX/crash" --rescan 0
wait_for "$A_URL/buildid/$LIBC_ID/executable" && wait_for "$A_URL/buildid/$FIX_ID/executable" || fail scan
for id_file in "$LIBC_ID:$LIBC" "$FIX_ID:$FIX/crash"; do
	id=${id_file%%:*} file=${id_file#*:}
	"$BIN/unwind-compile" "$file" -o "$SCRATCH/want.$id"
	curl -s -D "$SCRATCH/h.$id" -o "$SCRATCH/got.$id" "$A_URL/buildid/$id/unwind"
	check "unwind_equals_cli_$(basename "$file")" cmp "$SCRATCH/got.$id" "$SCRATCH/want.$id"
done
etag=$(tr -d '\r' <"$SCRATCH/h.$LIBC_ID" | awk -F': ' 'tolower($1)=="etag" { print $2 }')
[[ -n $etag ]] && ok unwind_etag || fail unwind_etag
[[ $(http_code -H "If-None-Match: $etag" "$A_URL/buildid/$LIBC_ID/unwind") == 304 ]] \
	&& ok unwind_if_none_match_304 || fail unwind_if_none_match_304
curl -s -o "$SCRATCH/again" "$A_URL/buildid/$LIBC_ID/unwind"
check unwind_cached_same cmp "$SCRATCH/again" "$SCRATCH/want.$LIBC_ID"
[[ $(metric "$A_URL" unwind_compiles_total) == 2 ]] && ok unwind_compiled_once \
	|| fail unwind_compiled_once "$(metric "$A_URL" unwind_compiles_total) compiles"
[[ $(http_code "$A_URL/buildid/0123456789abcdef0123456789abcdef01234567/unwind") == 404 ]] \
	&& ok unwind_unknown_404 || fail unwind_unknown_404
# restart: the table is served from the store without compiling
kill -TERM "$A_PID"; wait "$A_PID"; SERVERS=()
start_server B --data "$SCRATCH/data" --rescan 0 || fail restart
curl -s -o "$SCRATCH/after" "$B_URL/buildid/$LIBC_ID/unwind"
cmp -s "$SCRATCH/after" "$SCRATCH/want.$LIBC_ID" && [[ $(metric "$B_URL" unwind_compiles_total) == 0 ]] \
	&& ok unwind_survives_restart || fail unwind_survives_restart
finish
