#!/usr/bin/env bash
# Identity without a GNU build-ID, end to end with every real part: the
# stripped Go fixture (only .gopclntab and a Go build-ID note) is uploaded
# by debuginfod-upload, sampled by profiler-agent with real BPF (its unwind
# table served by the server under the same identity), and the profile read
# back from GET /profiles names the fixture's Go functions (Google pprof).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf go_e2e_upload go_e2e_table_served go_e2e_agent_posted go_e2e_symbolized
. "$TOP/tests/lib/pprof.sh"
ensure_pprof || { skip go_e2e_symbolized "pprof could not be built (golang-github-google-pprof-dev)"; finish; }
pp() { env PPROF_BINARY_PATH=/nonexistent PPROF_TMPDIR="$SCRATCH" HOME="$SCRATCH" "$PPROF" -symbolize=none "$@" 2>&1; }
GO=$FIXTURES/go/spin-stripped
[[ -x $GO ]] || { fail go_e2e_upload "fixture $GO not built (make fixtures)"; finish; }
# The identity every component computes (docs/identity.md), here from unwind-compile.
GO_ID=$("$BIN/unwind-compile" --stats "$GO" | python3 -c 'import json,sys; print(json.load(sys.stdin)["build_id"])')

echo "go-token" >"$SCRATCH/tokens"
dil_start S --data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --rescan 0 --no-watch --verbose
"$BIN/debuginfod-upload" --server "$S_URL" --token-file "$SCRATCH/tokens" "$GO" \
	>"$SCRATCH/upload.log" 2>&1 && [[ $(http_code -I "$S_URL/buildid/$GO_ID/executable") == 200 ]] &&
	ok go_e2e_upload || fail go_e2e_upload "id $GO_ID: $(tail -2 "$SCRATCH/upload.log" | tr '\n' ' ')"

"$GO" -duration 30s >/dev/null & GOPID=$!; BG+=("$GOPID")
sleep 0.3
timeout 60 "$AGENT" --pid "$GOPID" --server "$S_URL" --token-file "$SCRATCH/tokens" \
	--frequency 199 --interval 2 --duration 4 --cache-dir "$SCRATCH/cache" \
	--buffer-dir "$SCRATCH/buffer" --stats-file "$SCRATCH/agent.json" 2>"$SCRATCH/agent.err"
kill "$GOPID" 2>/dev/null
grep -q "url=\"/buildid/$GO_ID/unwind\"" "$SCRATCH/S.log" && (( $(json "$SCRATCH/agent.json" tables_fetched) >= 1 )) &&
	ok go_e2e_table_served || fail go_e2e_table_served "$(cat "$SCRATCH/agent.json" 2>/dev/null)"
sent=$(json "$SCRATCH/agent.json" profiles_sent 2>/dev/null || echo 0)
(( sent >= 1 )) && ok go_e2e_agent_posted || fail go_e2e_agent_posted "sent $sent: $(tail -2 "$SCRATCH/agent.err")"

for i in $(seq 60); do
	curl -s "$S_URL/profiles" -o "$SCRATCH/p.pb.gz"
	pp -top "$SCRATCH/p.pb.gz" >"$SCRATCH/top.txt"
	grep -q "main.leafMix" "$SCRATCH/top.txt" && break
	sleep 0.5
done
pp -traces "$SCRATCH/p.pb.gz" >"$SCRATCH/traces.txt"
if grep -q "main.leafMix" "$SCRATCH/top.txt" && grep -q "main.worker" "$SCRATCH/traces.txt" &&
   grep -q "runtime.goexit" "$SCRATCH/traces.txt"; then
	ok go_e2e_symbolized
else
	fail go_e2e_symbolized "$(head -12 "$SCRATCH/top.txt" | tr '\n' ' ')"
fi
finish
