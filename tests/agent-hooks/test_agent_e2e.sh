#!/usr/bin/env bash
# profiler-agent end to end: the real server serves the unwind tables of a
# stripped -O2 -fomit-frame-pointer fixture (and libc, ld.so); the agent
# samples it with real BPF and ships pprof to a sink and to --output.
# Oracles: an independent pprof decoder, `symbolize` on the unstripped twin,
# the server's request log.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf agent_runs profiles_delivered unwinds_to_main labels tables_once_per_build_id \
	etag_revalidation server_down_fallback
SPIN_ID=$(build_id_of "$AFIX/spin")
dil_start S --data "$SCRATCH/data" --scan "$AFIX/spin" --scan "$LIBC" --scan "$LDSO" \
	--rescan 0 --verbose
wait_for "$S_URL/buildid/$SPIN_ID/executable" || fail server_scan
start_sink K

run_agent() { # NAME PID ARGS...
	local name=$1 pid=$2; shift 2
	timeout 60 "$AGENT" --pid "$pid" --frequency 199 --interval 1 --duration 3 \
		--stats-file "$SCRATCH/$name.json" --output "$SCRATCH/$name.out" "$@" \
		2>"$SCRATCH/$name.err"
}

"$AFIX/spin" 200 >/dev/null & SPIN=$!; BG+=("$SPIN")
run_agent a1 "$SPIN" --server "$S_URL" --profile-url "http://127.0.0.1:$K_PORT/profiles" \
	--cache-dir "$SCRATCH/cache" --label env=ci --label team=perf
check agent_runs test -s "$SCRATCH/a1.json"
n_out=$(ls "$SCRATCH"/a1.out/*.pb.gz 2>/dev/null | wc -l)
n_sink=$(ls "$K_DIR"/*.pb.gz 2>/dev/null | wc -l)
if (( n_out >= 2 )) && [[ $n_out == "$n_sink" ]] && [[ $(cat "$K_DIR"/*.pb.gz | sha256sum) == $(cat "$SCRATCH"/a1.out/*.pb.gz | sha256sum) ]]; then
	ok profiles_delivered
else
	fail profiles_delivered "$n_out written, $n_sink received"
fi
r=$($CHECK reach --build-id "$SPIN_ID" --exe "$AFIX/spin.debug" --function main \
	--symbolize "$BIN/symbolize" "$SCRATCH"/a1.out/*.pb.gz)
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["samples_in_object"] >= 50 and r["fraction"] >= 0.99))' "$r" \
	&& ok unwinds_to_main || fail unwinds_to_main "$r"
s=$($CHECK summary "$SCRATCH"/a1.out/*.pb.gz)
python3 - "$s" "$SPIN_ID" <<'PY' && ok labels || fail labels "$s"
import json, sys
s = json.loads(sys.argv[1])
want = {'host', 'pid', 'comm', 'exe', 'env', 'team'}
assert want <= set(s['label_keys']), s['label_keys']
assert 'exe=spin' in s['labels'] and 'env=ci' in s['labels'] and 'team=perf' in s['labels']
assert any(m.startswith(sys.argv[2] + ' ') for m in s['mappings'])
assert 'profiler-agent 1' in s['comments']
PY
# Every table came from the server (spin, libc, ld.so), each asked once.
if [[ $(max_unwind_requests "$SCRATCH/S.log") == 1 ]] &&
   [[ $(json "$SCRATCH/a1.json" fetch_max_requests_per_build_id) == 1 ]] &&
   (( $(json "$SCRATCH/a1.json" tables_fetched) >= 3 )); then
	ok tables_once_per_build_id
else
	fail tables_once_per_build_id "$(grep -c /unwind "$SCRATCH/S.log") requests; $(cat "$SCRATCH/a1.json")"
fi
# Same cache, second run: If-None-Match -> 304, the cached tables are used.
run_agent a2 "$SPIN" --server "$S_URL" --no-upload --cache-dir "$SCRATCH/cache"
(( $(json "$SCRATCH/a2.json" fetch_304) >= 3 )) && [[ $(json "$SCRATCH/a2.json" fetch_200) == 0 ]] \
	&& (( $(json "$SCRATCH/a2.json" tables_fetched) >= 3 )) \
	&& ok etag_revalidation || fail etag_revalidation "$(cat "$SCRATCH/a2.json")"
# Server unreachable, empty cache: one failed request, then local compiles.
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_agent a3 "$SPIN" --server "http://127.0.0.1:$dead" --no-upload --cache-dir "$SCRATCH/cache3"
r=$($CHECK reach --build-id "$SPIN_ID" --exe "$AFIX/spin.debug" --function main \
	--symbolize "$BIN/symbolize" "$SCRATCH"/a3.out/*.pb.gz)
[[ $(json "$SCRATCH/a3.json" fetch_transport_errors) == 1 ]] \
	&& (( $(json "$SCRATCH/a3.json" tables_compiled) >= 3 )) \
	&& python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["fraction"] < 0.99)' "$r" \
	&& ok server_down_fallback || fail server_down_fallback "$r $(cat "$SCRATCH/a3.json")"
finish
