#!/usr/bin/env bash
# Google's pprof reads stored profiles straight from the server, as
# `pprof -http=:PORT 'http://HOST:8002/profiles?…'` does: it fetches the
# profile, then asks /symbolz about every mapping still without names.  That
# must succeed when some debuginfo is missing: named frames keep their
# names, the rest show as addresses.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
. "$TOP/tests/lib/pprof.sh"
dil_setup
if ! ensure_pprof; then
	skip pprof_view "could not build pprof offline: $(tail -1 "$SCRATCH/gobuild" 2>/dev/null)"
	finish
fi
TOOL=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
ID=$(build_id_of "$FIX/crash")
UNKNOWN=00112233445566778899aabbccddeeff00112233
echo secret >"$SCRATCH/tokens"
dil_start S --data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --scan "$FIX/crash.debug" \
	--rescan 0 --no-watch
wait_for "$S_URL/buildid/$ID/debuginfo" || fail pprof_view_scan "crash.debug not indexed"

# Two mappings: the fixture (debuginfo scanned) and an object nobody has.
MAIN=$(nm "$FIX/crash" | awk '$3 == "main" { print $1 }')
LEAF=$(printf '%x' $((16#$MAIN + 4)))
printf '%s = 70\n2:1234 = 30\n' "$LEAF" |
	"$TOOL" make "$SCRATCH/p.pb.gz" --time 1700000000000000000 --duration 10000000000 \
		--label run=view --mapping "$ID" /opt/app/crash --mapping "$UNKNOWN" /opt/app/gone
code=$(http_code -H 'Authorization: Bearer secret' --data-binary @"$SCRATCH/p.pb.gz" \
	"$S_URL/profiles")
[[ $code == 201 ]] || fail pprof_view_post "HTTP $code"
for i in $(seq 100); do
	curl -s "$S_URL/profiles/list" | grep -q '"state":"partial"' && break
	sleep 0.1
done

URL="$S_URL/profiles?from=1699999999&label=run=view"
env HOME="$SCRATCH" PPROF_TMPDIR="$SCRATCH" PPROF_BINARY_PATH=/nonexistent \
	"$PPROF" -top "$URL" >"$SCRATCH/top" 2>"$SCRATCH/top.err"
rc=$?
[[ $rc == 0 ]] && ok pprof_top_url_succeeds || fail pprof_top_url_succeeds "rc $rc: $(tail -3 "$SCRATCH/top.err")"
grep -qw main "$SCRATCH/top" && ok pprof_top_url_named || fail pprof_top_url_named "$(cat "$SCRATCH/top")"
# Without names pprof shows the object ([gone]) and, with -addresses, the address.
env HOME="$SCRATCH" PPROF_TMPDIR="$SCRATCH" PPROF_BINARY_PATH=/nonexistent \
	"$PPROF" -top -addresses "$URL" >"$SCRATCH/addr" 2>>"$SCRATCH/top.err"
grep -q '\[gone\]' "$SCRATCH/top" && grep -q '0*1234' "$SCRATCH/addr" \
	&& ok pprof_top_url_unnamed_as_address || fail pprof_top_url_unnamed_as_address "$(cat "$SCRATCH/addr")"
(( $(metric "$S_URL" symbolz_addresses_total) >= 1 )) && ok pprof_asked_symbolz \
	|| fail pprof_asked_symbolz "pprof never reached /symbolz"

# The protocol itself: pprof's form gets 200 and no names; anything else 400.
out=$(curl -s -w '%{http_code}' --data-binary '0x1234+0x5678' "$S_URL/symbolz")
[[ $out == 200 ]] && ok symbolz_answers_200 || fail symbolz_answers_200 "$out"
[[ $(http_code --data-binary 'not+addresses' "$S_URL/symbolz") == 400 ]] && ok symbolz_refuses_garbage \
	|| fail symbolz_refuses_garbage
[[ $(http_code "$S_URL/symbolz") == 405 ]] && ok symbolz_get_405 || fail symbolz_get_405
finish
