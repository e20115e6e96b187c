#!/usr/bin/env bash
# Debuginfo that arrives while an index is being built is not lost: the
# build that read the older candidate (the executable's symbol table) is
# done again, so a profile symbolized from it gets the DWARF names (file,
# line, inlined frames), not the symbol table's.  The window is widened by
# the test-only DEBUGINFOD_LITE_TEST_BUILD_DELAY_MS.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
TOOL=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
ID=$(build_id_of "$FIX/crash.stripped")
LEAF=$(nm "$FIX/crash" | awk '/ [tT] inner_frame$/ { print $1 }')
echo secret >"$SCRATCH/tokens"
AUTH=(-H 'Authorization: Bearer secret')
DEBUGINFOD_LITE_TEST_BUILD_DELAY_MS=2000 dil_start S --data "$SCRATCH/data" \
	--token-file "$SCRATCH/tokens" --no-watch
state_of() { curl -s "$S_URL/profiles/list?id=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["profiles"][0]["state"])'; }

objcopy --strip-debug "$FIX/crash" "$SCRATCH/crash.symtab" # symbols, no DWARF
[[ $(http_code "${AUTH[@]}" -T "$SCRATCH/crash.symtab" "$S_URL/buildid/$ID/executable") == 201 ]] \
	|| fail race_upload_executable
# A /symbolize request builds the index from the executable alone…
curl -s -o "$SCRATCH/sym.json" -X POST --data-binary \
	"{\"requests\":[{\"build_id\":\"$ID\",\"addresses\":[\"0x$LEAF\"]}]}" "$S_URL/symbolize" &
sym_pid=$!
for i in $(seq 100); do grep -q "test: index $ID built" "$SCRATCH/S.log" && break; sleep 0.1; done
grep -q "test: index $ID built" "$SCRATCH/S.log" || fail race_window "no build seen"
# …while the DWARF arrives, and a profile needs the index.
[[ $(http_code "${AUTH[@]}" -T "$FIX/crash.debug" "$S_URL/buildid/$ID/debuginfo") == 201 ]] \
	|| fail race_upload_debuginfo
printf '%s = 10\n' "$LEAF" | "$TOOL" make "$SCRATCH/p.pb.gz" --time 1700000000000000000 \
	--duration 10000000000 --mapping "$ID" /opt/app/crash
P=$(curl -s "${AUTH[@]}" --data-binary @"$SCRATCH/p.pb.gz" "$S_URL/profiles" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait "$sym_pid"
# Until it is symbolized with the DWARF names (at most 30 s).
for i in $(seq 300); do
	if [[ $(state_of "$P") == symbolized ]]; then
		curl -s "$S_URL/profiles" | gunzip -c >"$SCRATCH/p.pb"
		grep -aq 'crash\.c' "$SCRATCH/p.pb" && break
	fi
	sleep 0.1
done
grep -aq 'crash\.c' "$SCRATCH/p.pb" && ok race_profile_has_dwarf_names \
	|| fail race_profile_has_dwarf_names "$(strings "$SCRATCH/p.pb" | tr '\n' ' ')"
[[ $(state_of "$P") == symbolized ]] && ok race_profile_symbolized || fail race_profile_symbolized "$(state_of "$P")"
# And the stored index is the DWARF one: /symbolize gives the source line.
curl -s -X POST --data-binary "{\"requests\":[{\"build_id\":\"$ID\",\"addresses\":[\"0x$LEAF\"]}]}" \
	"$S_URL/symbolize" >"$SCRATCH/sym2.json"
grep -q 'crash\.c' "$SCRATCH/sym2.json" && ok race_index_from_dwarf || fail race_index_from_dwarf "$(cat "$SCRATCH/sym2.json")"
finish
