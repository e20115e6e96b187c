#!/usr/bin/env bash
# Resilience: (1) the profile receiver dies for a while during a run: the
# profiles are buffered on disk and all arrive, oldest first, once it is
# back, with every sample (oracle: the sink's files against --output);
# (2) kill -9 of the agent leaves no BPF program, map or link behind
# (oracle: bpftool).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf buffered_while_down all_profiles_delivered no_samples_lost buffer_emptied \
	kill9_releases_bpf
dil_start S --data "$SCRATCH/data" --scan "$AFIX/spin" --rescan 0
start_sink K
"$AFIX/spin" 60 >/dev/null & SPIN=$!; BG+=("$SPIN")
timeout 60 "$AGENT" --pid "$SPIN" --server "$S_URL" --profile-url "http://127.0.0.1:$K_PORT/profiles" \
	--output "$SCRATCH/out" --cache-dir "$SCRATCH/cache" --buffer-dir "$SCRATCH/buf" \
	--frequency 99 --interval 0.5 --duration 7 --stats-file "$SCRATCH/st.json" \
	2>"$SCRATCH/agent.err" &
A=$!; BG+=("$A")
sleep 1.5
kill "$K_PID"; wait "$K_PID" 2>/dev/null
sleep 3  # down: several intervals
start_sink K "$K_PORT"
wait "$A"
st=$(cat "$SCRATCH/st.json")
(( $(json "$SCRATCH/st.json" profiles_buffered) >= 3 )) && ok buffered_while_down \
	|| fail buffered_while_down "$st"
n_out=$(ls "$SCRATCH"/out/*.pb.gz | wc -l)
n_sink=$(ls "$K_DIR"/*.pb.gz "$SCRATCH"/K.recv/*.pb.gz 2>/dev/null | sort -u | wc -l)
# The sink's files are numbered in arrival order: compare content in order.
got=$(cat $(ls "$K_DIR"/*.pb.gz | sort) | sha256sum)
want=$(cat $(ls "$SCRATCH"/out/*.pb.gz | sort) | sha256sum)
[[ $n_out == "$n_sink" && $got == "$want" ]] && ok all_profiles_delivered \
	|| fail all_profiles_delivered "$n_out written, $n_sink received"
s_out=$($CHECK summary "$SCRATCH"/out/*.pb.gz | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
s_sink=$($CHECK summary "$K_DIR"/*.pb.gz | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
[[ $s_out == "$s_sink" && $s_out -gt 0 && $(json "$SCRATCH/st.json" profiles_dropped) == 0 ]] \
	&& ok no_samples_lost || fail no_samples_lost "$s_out written, $s_sink received"
[[ -z $(ls "$SCRATCH/buf") ]] && ok buffer_emptied || fail buffer_emptied "$(ls "$SCRATCH/buf")"

# kill -9: the kernel frees what only the agent's file descriptors held.
"$AGENT" --pid "$SPIN" --server "$S_URL" --no-upload --output "$SCRATCH/out9" \
	--cache-dir "$SCRATCH/cache" --frequency 99 --duration 30 2>"$SCRATCH/a9.err" &
A9=$!; BG+=("$A9")
for i in $(seq 100); do grep -q started "$SCRATCH/a9.err" && break; sleep 0.05; done
ids() { # KIND PID: ids of the BPF objects PID holds, from its fds' fdinfo
	cat /proc/"$2"/fdinfo/* 2>/dev/null | awk -v k="$1_id:" '$1 == k { print $2 }' | sort -u | tr '\n' ' '
}
progs=$(ids prog "$A9") maps=$(ids map "$A9") links=$(ids link "$A9")
kill -9 "$A9"; wait "$A9" 2>/dev/null
left=""
for i in $(seq 50); do
	left=""
	for id in $progs; do bpftool prog show id "$id" >/dev/null 2>&1 && left+=" prog:$id"; done
	for id in $maps; do bpftool map show id "$id" >/dev/null 2>&1 && left+=" map:$id"; done
	for id in $links; do bpftool link show id "$id" >/dev/null 2>&1 && left+=" link:$id"; done
	[[ -z $left ]] && break
	sleep 0.1
done
if [[ -n $progs && -n $maps && -n $links && -z $left ]]; then
	ok kill9_releases_bpf
else
	fail kill9_releases_bpf "held: progs [$progs] maps [$maps] links [$links]; left:$left"
fi
finish
