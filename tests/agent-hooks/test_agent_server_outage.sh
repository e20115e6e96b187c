#!/usr/bin/env bash
# The issue's resilience scenario with the real profile store: the server is
# killed (SIGKILL) for 30 s in the middle of a profiling run and comes back on
# the same port with the same data directory.  Every profile the agent made
# must be stored once, with every sample (oracle: the agent's own --output
# copies, read with an independent pprof decoder).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf outage_profiles_buffered outage_all_profiles_stored outage_no_samples_lost
DOWN=${OUTAGE_SECONDS:-30}
dil_start S --data "$SCRATCH/data" --scan "$AFIX/spin" --rescan 0 --no-watch
"$AFIX/spin" $((DOWN + 30)) >/dev/null & SPIN=$!; BG+=("$SPIN")
timeout $((DOWN + 60)) "$AGENT" --pid "$SPIN" --server "$S_URL" --output "$SCRATCH/out" \
	--cache-dir "$SCRATCH/cache" --buffer-dir "$SCRATCH/buf" --frequency 49 --interval 1 \
	--duration $((DOWN + 8)) --stats-file "$SCRATCH/st.json" 2>"$SCRATCH/agent.err" &
A=$!; BG+=("$A")
sleep 3
kill -9 $(pgrep -P "$S_PID") "$S_PID"; wait "$S_PID" 2>/dev/null  # the server and its timeout wrapper
sleep "$DOWN"
dil_start S --data "$SCRATCH/data" --listen "127.0.0.1:$S_PORT" --rescan 0 --no-watch
wait "$A"
(( $(json "$SCRATCH/st.json" profiles_buffered) >= DOWN / 2 )) && ok outage_profiles_buffered ||
	fail outage_profiles_buffered "$(cat "$SCRATCH/st.json")"
made=$(ls "$SCRATCH"/out/*.pb.gz | wc -l)
stored=$(curl -s "$S_URL/profiles/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["profiles"]))')
[[ $made -ge $DOWN && $stored == "$made" && $(json "$SCRATCH/st.json" profiles_dropped) == 0 ]] &&
	ok outage_all_profiles_stored || fail outage_all_profiles_stored "$made made, $stored stored"
curl -s "$S_URL/profiles?symbolize=0" -o "$SCRATCH/all.pb.gz"
s_out=$($CHECK summary "$SCRATCH"/out/*.pb.gz | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
v_out=$(python3 - "$SCRATCH"/out/*.pb.gz <<'PY'
import os, sys
sys.path.insert(0, os.environ["TOP"] + "/contrib")
from pprof_decode import parse
print(sum(s["values"][0] for f in sys.argv[1:] for s in parse(f)["samples"]))
PY
)
v_srv=$(python3 - "$SCRATCH/all.pb.gz" <<'PY'
import os, sys
sys.path.insert(0, os.environ["TOP"] + "/contrib")
from pprof_decode import parse
print(sum(s["values"][0] for s in parse(sys.argv[1])["samples"]))
PY
)
[[ $s_out -gt 0 && $v_out == "$v_srv" ]] && ok outage_no_samples_lost ||
	fail outage_no_samples_lost "agent made $v_out sample counts, the store has $v_srv"
finish
