#!/usr/bin/env bash
# POST /symbolize: results equal `symbolize --json` and llvm-symbolizer on
# random libc addresses; several build-IDs per request (dwz supplementary
# file fetched by its build-ID); unknown build-IDs reported per entry;
# concurrent requests share one index build; the index survives restarts;
# hostile bodies get 4xx.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
DBG=/usr/lib/debug/.build-id/${LIBC_ID:0:2}/${LIBC_ID:2}.debug
SX=$FIXTURES/symbolizer
DWZ_ID=$(build_id_of "$SX/dwz/dwz1")
UNKNOWN=0123456789abcdef0123456789abcdef01234567
# report < <(cmd): pass through ok/FAIL lines of a helper, remembering failures.
report() { local l; while IFS= read -r l; do echo "$l"; [[ $l == FAIL* ]] && _check_failed=1; done; return 0; }
post() { curl -s -X POST -H 'Content-Type: application/json' --data-binary "$@"; }
post_code() { curl -s -o "$SCRATCH/body" -w '%{http_code}' -X POST --data-binary "$@"; }

if [[ ! -r $DBG ]]; then
	skip symbolize_libc "no libc6-dbg debug file $DBG"
	finish
fi
# The dwz pair is scanned as a directory: dwz1 (DWARF with .gnu_debugaltlink)
# and common.debug (the supplementary file, served by its own build-ID).
dil_start A --data "$SCRATCH/a" --scan "$LIBC" --scan "$DBG" --scan "$FIX/crash.stripped" \
	--scan "$FIX/crash.debug" --scan "$SX/dwz" --rescan 0
wait_for "$A_URL/buildid/$LIBC_ID/debuginfo" && wait_for "$A_URL/buildid/$DWZ_ID/debuginfo" \
	&& wait_for "$A_URL/buildid/$FIX_ID/debuginfo" || fail scan

# 1000 random libc addresses, as return addresses and as leaf PCs.
python3 "$TOP/tests/debuginfod-lite/symbolize_compare.py" "$A_URL" "$LIBC_ID" "$LIBC" "$DBG" \
	1000 return "$BIN/symbolize" > "$SCRATCH/cmp1"; report <"$SCRATCH/cmp1"
python3 "$TOP/tests/debuginfod-lite/symbolize_compare.py" "$A_URL" "$LIBC_ID" "$LIBC" "$DBG" \
	1000 leaf "$BIN/symbolize" > "$SCRATCH/cmp2"; report <"$SCRATCH/cmp2"

# Several build-IDs in one request, one of them unknown, one needing dwz.
w=$(nm "$SX/dwz/dwz1" | awk '/ T work1$/ {print $1}')
dwz_addrs=$(for d in 0 4 9 17 30; do printf '"0x%x",' $((0x$w + d)); done)
dwz_addrs=${dwz_addrs%,}
m=$(nm "$FIX/crash" | awk '/ T main$/ {print $1}')
crash_addrs="\"0x$m\",\"0x$(printf %x $((0x$m + 8)))\""
cat >"$SCRATCH/multi.json" <<JSON
{"requests":[
 {"build_id":"$LIBC_ID","addresses":["0x9a0a0",639136],"kind":"return"},
 {"build_id":"$UNKNOWN","addresses":["0x1000"]},
 {"build_id":"$DWZ_ID","addresses":[$dwz_addrs],"kind":"leaf"},
 {"build_id":"${FIX_ID^^}","addresses":[$crash_addrs],"kind":"leaf","inlines":false}
]}
JSON
post @"$SCRATCH/multi.json" "$A_URL/symbolize" >"$SCRATCH/multi.out"
printf '0x9a0a0\n0x9c0a0\n' | "$BIN/symbolize" -e "$LIBC" --json --inlines --kind return \
	--no-cache >"$SCRATCH/cli.libc"
tr -d '"[]' <<<"$dwz_addrs" | tr ',' '\n' | "$BIN/symbolize" -e "$SX/dwz/dwz1" --json --inlines \
	--no-cache >"$SCRATCH/cli.dwz"
tr -d '"' <<<"$crash_addrs" | tr ',' '\n' | "$BIN/symbolize" -e "$FIX/crash" --json \
	--no-cache >"$SCRATCH/cli.crash"
python3 - "$SCRATCH" "$LIBC_ID" "$UNKNOWN" "$DWZ_ID" "$FIX_ID" >"$SCRATCH/multi.res" <<'PY' 
import json, sys
d, libc, unknown, dwz, fix = sys.argv[1:]
out = json.load(open(f"{d}/multi.out"))["results"]
cli = lambda n: [json.loads(l) for l in open(f"{d}/cli.{n}")]
ids = [r["build_id"] for r in out]
print("ok symbolize_multi_order" if ids == [libc, unknown, dwz, fix]
      else f"FAIL symbolize_multi_order: {ids}")
print("ok symbolize_multi_libc" if out[0].get("addresses") == cli("libc")
      else f"FAIL symbolize_multi_libc: {out[0]}")
print("ok symbolize_unknown_build_id" if out[1] == {"build_id": unknown, "error": "no debuginfo"}
      else f"FAIL symbolize_unknown_build_id: {out[1]}")
dz = out[2].get("addresses")
inl = dz and any(len(a["frames"]) > 1 for a in dz)
print("ok symbolize_dwz_altlink" if dz == cli("dwz") and inl
      else f"FAIL symbolize_dwz_altlink: {out[2]} vs {cli('dwz')}")
print("ok symbolize_no_inlines_uppercase_id" if out[3].get("addresses") == cli("crash")
      and all(len(a["frames"]) == 1 for a in out[3]["addresses"])
      else f"FAIL symbolize_no_inlines_uppercase_id: {out[3]} vs {cli('crash')}")
PY
report <"$SCRATCH/multi.res"
[[ $(metric "$A_URL" symbolize_index_builds_total) == 3 ]] && ok symbolize_built_per_build_id \
	|| fail symbolize_built_per_build_id "$(metric "$A_URL" symbolize_index_builds_total) builds"

# Hostile and malformed bodies.
bad() { # NAME CODE BODY
	local code; code=$(post_code "$3" "$A_URL/symbolize")
	[[ $code == "$2" ]] && [[ $(wc -l <"$SCRATCH/body") == 1 ]] && ok "$1" \
		|| fail "$1" "HTTP $code: $(head -c 200 "$SCRATCH/body")"
}
bad symbolize_bad_json 400 '{"requests":[{"build_id":'
bad symbolize_not_object 400 '[1,2,3]'
bad symbolize_empty_body 400 ''
bad symbolize_bad_build_id 400 '{"requests":[{"build_id":"../../etc","addresses":["0x1"]}]}'
bad symbolize_odd_build_id 400 '{"requests":[{"build_id":"abc","addresses":["0x1"]}]}'
bad symbolize_bad_address 400 "{\"requests\":[{\"build_id\":\"$LIBC_ID\",\"addresses\":[\"0xZZ\"]}]}"
bad symbolize_negative_address 400 "{\"requests\":[{\"build_id\":\"$LIBC_ID\",\"addresses\":[-5]}]}"
bad symbolize_long_address 400 "{\"requests\":[{\"build_id\":\"$LIBC_ID\",\"addresses\":[\"0x11112222333344445\"]}]}"
bad symbolize_bad_kind 400 "{\"requests\":[{\"build_id\":\"$LIBC_ID\",\"addresses\":[1],\"kind\":\"x\"}]}"
bad symbolize_unknown_key 400 "{\"requests\":[{\"build_id\":\"$LIBC_ID\",\"addresses\":[1],\"bogus\":1}]}"
bad symbolize_duplicate_key 400 "{\"requests\":[{\"build_id\":\"$LIBC_ID\",\"build_id\":\"$LIBC_ID\",\"addresses\":[1]}]}"
bad symbolize_nul_in_string 400 '{"requests":[{"build_id":"ab\u0000cd","addresses":[1]}]}'
python3 -c 'print("[" * 200000 + "]" * 200000)' >"$SCRATCH/deep.json"
bad symbolize_deep_nesting 400 @"$SCRATCH/deep.json"
head -c 17000000 /dev/zero | tr '\0' ' ' >"$SCRATCH/huge.json"
bad symbolize_body_too_large 413 @"$SCRATCH/huge.json"
[[ $(http_code "$A_URL/symbolize") == 405 ]] && ok symbolize_get_405 || fail symbolize_get_405
kill -0 "$A_PID" && ok symbolize_survives_bad_input || fail symbolize_survives_bad_input

# Concurrent requests for a build-ID nobody has indexed: one build.
start_server B --data "$SCRATCH/b" --scan "$LIBC" --scan "$DBG" --rescan 0 \
	--symbolize-max-addresses 1000 --symbolize-cache 1 || fail server_b
wait_for "$B_URL/buildid/$LIBC_ID/debuginfo" || fail scan_b
printf '{"requests":[{"build_id":"%s","addresses":["0x9a0a0","0x28000","0x40000"]}]}' "$LIBC_ID" \
	>"$SCRATCH/one.json"
pids=()
for i in 1 2 3 4 5 6 7 8; do
	post @"$SCRATCH/one.json" "$B_URL/symbolize" >"$SCRATCH/conc.$i" &
	pids+=($!)
done
wait "${pids[@]}" # not bare `wait`: the servers are children too
same=1
for i in 2 3 4 5 6 7 8; do cmp -s "$SCRATCH/conc.1" "$SCRATCH/conc.$i" || same=0; done
[[ $same == 1 ]] && grep -q '"line":[0-9]' "$SCRATCH/conc.1" && ok symbolize_concurrent_same \
	|| fail symbolize_concurrent_same "$(head -c 300 "$SCRATCH/conc.1")"
[[ $(metric "$B_URL" symbolize_index_builds_total) == 1 ]] && ok symbolize_concurrent_one_build \
	|| fail symbolize_concurrent_one_build "$(metric "$B_URL" symbolize_index_builds_total) builds"
# The address limit (--symbolize-max-addresses 1000) → 413.
python3 -c "import json; print(json.dumps({'requests':[{'build_id':'$LIBC_ID','addresses':list(range(1001))}]}))" \
	>"$SCRATCH/many.json"
[[ $(post_code @"$SCRATCH/many.json" "$B_URL/symbolize") == 413 ]] && ok symbolize_address_limit \
	|| fail symbolize_address_limit "$(cat "$SCRATCH/body")"
# Restart: the stored index is mapped again, not rebuilt.
kill -TERM "$B_PID"; wait "$B_PID"
start_server C --data "$SCRATCH/b" --rescan 0 --symbolize-cache 1 || fail restart
post @"$SCRATCH/one.json" "$C_URL/symbolize" >"$SCRATCH/after"
cmp -s "$SCRATCH/after" "$SCRATCH/conc.1" && [[ $(metric "$C_URL" symbolize_index_builds_total) == 0 ]] \
	&& [[ $(metric "$C_URL" symbolize_index_loads_total) == 1 ]] && ok symbolize_index_survives_restart \
	|| fail symbolize_index_survives_restart
finish
