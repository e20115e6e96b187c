#!/usr/bin/env bash
# Process start: 50 short-lived processes of several binaries start while
# the agent follows their parent.  Every exec is seen, and each build-ID's
# table is requested from the server once, never once per process
# (oracle: the server's request log).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf execs_seen fetch_once_per_build_id exec_latency_measured no_scan_errors
SPIN_ID=$(build_id_of "$AFIX/spin")
dil_start S --data "$SCRATCH/data" --scan "$AFIX/spin" --scan "$AFIX/blip" --scan "$LIBC" \
	--scan "$LDSO" --scan /usr/bin/true --scan /usr/bin/env --rescan 0 --verbose
wait_for "$S_URL/buildid/$SPIN_ID/executable" || fail server_scan
# The launcher waits for the agent, then starts 50 processes, 5 at a time.
cat >"$SCRATCH/launch.sh" <<SH
#!/bin/bash
while [[ ! -e $SCRATCH/go ]]; do sleep 0.05; done
for i in \$(seq 10); do
	"$AFIX/blip" \$i >/dev/null &
	"$AFIX/spin" 0.05 >/dev/null &
	/usr/bin/true &
	/usr/bin/env true &
	"$AFIX/blip" 7 >/dev/null &
	wait
done
SH
chmod +x "$SCRATCH/launch.sh"
"$SCRATCH/launch.sh" & L=$!; BG+=("$L")
timeout 120 "$AGENT" --pid "$L" --server "$S_URL" --no-upload --output "$SCRATCH/out" \
	--cache-dir "$SCRATCH/cache" --frequency 99 --interval 1 --duration 60 \
	--stats-file "$SCRATCH/st.json" 2>"$SCRATCH/agent.err" &
A=$!; BG+=("$A")
for i in $(seq 100); do grep -q started "$SCRATCH/agent.err" && break; sleep 0.05; done
touch "$SCRATCH/go"
wait "$A"   # the agent stops once everything it followed has exited
st=$(cat "$SCRATCH/st.json" 2>/dev/null)
(( $(json "$SCRATCH/st.json" execs) >= 50 )) && ok execs_seen || fail execs_seen "$st"
reqs=$(grep -c 'url="/buildid/[0-9a-f]*/unwind"' "$SCRATCH/S.log")
ids=$(grep -o 'url="/buildid/[0-9a-f]*/unwind"' "$SCRATCH/S.log" | sort -u | wc -l)
if [[ $(max_unwind_requests "$SCRATCH/S.log") == 1 ]] && (( ids >= 5 )) &&
   [[ $(json "$SCRATCH/st.json" fetch_requests) == "$reqs" ]]; then
	ok fetch_once_per_build_id
else
	fail fetch_once_per_build_id "$reqs requests for $ids build-IDs; $st"
fi
# Processes that exit before their first scan have no figure: true and env
# always, blip often on a loaded machine.  The ten spins live 50 ms, so each
# of them must have one.
n=$(json "$SCRATCH/st.json" exec_to_first_tables_ms.n)
(( n >= 10 && n <= $(json "$SCRATCH/st.json" execs) )) \
	&& ok exec_latency_measured || fail exec_latency_measured "$st"
[[ $(json "$SCRATCH/st.json" scan_errors) == 0 ]] && ok no_scan_errors \
	|| fail no_scan_errors "$(head -5 "$SCRATCH/agent.err")"
finish
