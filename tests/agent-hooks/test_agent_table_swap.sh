#!/usr/bin/env bash
# A table the agent compiled because the server lacked it is swapped for the
# server's copy as soon as a retry finds it there, in the running process:
# the agent starts while the server has no copy of the fixture (404 -> local
# compile), the fixture is then uploaded, and the agent loads the server's
# table without a restart (log line, tables_replaced); samples taken after
# the swap still unwind to main.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf swap_compiled_first swap_replaced swap_stats swap_unwinds_to_main
SPIN_ID=$(build_id_of "$AFIX/spin")
echo "swap-token" >"$SCRATCH/tokens"
dil_start S --data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --scan "$LIBC" --scan "$LDSO" \
	--rescan 0 --no-watch --verbose
wait_for "$S_URL/buildid/$(build_id_of "$LIBC")/executable" || fail server_scan
# The first retry after 1 s (then 2, 4, …): this run sees several.
RETRY=()
"$AGENT" --help 2>&1 | grep -q -- --table-retry && RETRY=(--table-retry 1)

"$AFIX/spin" 60 >/dev/null & SPIN=$!; BG+=("$SPIN")
timeout 90 "$AGENT" --pid "$SPIN" --server "$S_URL" --no-upload --output "$SCRATCH/out" \
	--frequency 199 --interval 1 --duration 20 --cache-dir "$SCRATCH/cache" "${RETRY[@]}" \
	--stats-file "$SCRATCH/agent.json" 2>"$SCRATCH/agent.err" &
A=$!; BG+=("$A")
for i in $(seq 100); do
	grep -q "url=\"/buildid/$SPIN_ID/unwind\" status=404" "$SCRATCH/S.log" && break
	sleep 0.1
done
grep -q "url=\"/buildid/$SPIN_ID/unwind\" status=404" "$SCRATCH/S.log" && ok swap_compiled_first \
	|| fail swap_compiled_first "the agent never asked for the fixture's table"
"$BIN/debuginfod-upload" --server "$S_URL" --token-file "$SCRATCH/tokens" "$AFIX/spin" \
	>"$SCRATCH/upload.log" 2>&1 || fail swap_upload "$(tail -1 "$SCRATCH/upload.log")"
for i in $(seq 150); do
	grep -q "table of $SPIN_ID .*replaced by the server's" "$SCRATCH/agent.err" && break
	kill -0 "$A" 2>/dev/null || break
	sleep 0.1
done
touch "$SCRATCH/swapped"
grep -q "table of $SPIN_ID .*replaced by the server's" "$SCRATCH/agent.err" && ok swap_replaced \
	|| fail swap_replaced "$(tail -3 "$SCRATCH/agent.err" | tr '\n' ' ')"
wait "$A"
(( $(json "$SCRATCH/agent.json" tables_replaced 2>/dev/null || echo 0) >= 1 )) && ok swap_stats \
	|| fail swap_stats "$(cat "$SCRATCH/agent.json" 2>/dev/null)"
# Profiles written after the swap: their samples of the fixture unwind to main.
after=$(find "$SCRATCH/out" -name '*.pb.gz' -newer "$SCRATCH/swapped" | sort)
if [[ -z $after ]]; then
	fail swap_unwinds_to_main "no profile written after the swap"
else
	r=$($CHECK reach --build-id "$SPIN_ID" --exe "$AFIX/spin.debug" --function main \
		--symbolize "$BIN/symbolize" $after)
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["samples_in_object"] >= 20 and r["fraction"] >= 0.99))' "$r" \
		&& ok swap_unwinds_to_main || fail swap_unwinds_to_main "$r"
fi
finish
