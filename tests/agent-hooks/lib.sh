# Helpers for the agent's test scripts (source after tests/lib/check.sh).
# The server and the sink listen on 127.0.0.1 on ports the kernel picks and
# stop on the EXIT trap or their own time limits.
. "$TOP/tests/debuginfod-lite/lib.sh"
AFIX=$FIXTURES/agent-hooks
AGENT=$BIN/profiler-agent
CHECK="python3 $TOP/tests/agent-hooks/pprof_check.py"
LDSO=$(readlink -f /lib64/ld-linux-x86-64.so.2)
BG=()
agent_setup() {
	dil_setup
	trap 'for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done; stop_servers; rm -rf "$SCRATCH"' EXIT
}
# Real BPF needs root and kernel BTF: otherwise every check is a skip.
need_bpf() {
	local why=""
	[[ $(id -u) == 0 ]] || why="needs root (CAP_BPF+CAP_PERFMON)"
	[[ -z $why && ! -r /sys/kernel/btf/vmlinux ]] && why="kernel has no BTF"
	if [[ -n $why ]]; then
		local n; for n in "$@"; do skip "$n" "$why"; done
		exit 0
	fi
}
# start_sink NAME [PORT]: sets NAME_PORT, NAME_PID, NAME_DIR.
start_sink() {
	local name=$1 port=${2:-0}
	rm -f "$SCRATCH/$name.port"
	python3 "$TOP/tests/agent-hooks/sink.py" --dir "$SCRATCH/$name.recv" --port "$port" \
		--port-file "$SCRATCH/$name.port" --lifetime 200 2>>"$SCRATCH/$name.log" &
	local pid=$! i
	BG+=("$pid")
	for i in $(seq 100); do [[ -s $SCRATCH/$name.port ]] && break; sleep 0.05; done
	printf -v "${name}_PORT" '%s' "$(cat "$SCRATCH/$name.port")"
	printf -v "${name}_PID" '%s' "$pid"
	printf -v "${name}_DIR" '%s' "$SCRATCH/$name.recv"
}
# json FILE KEY: a top-level number (or nested a.b) from the agent's stats.
json() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }
# The most requests the server saw for any one build-ID's unwind table.
max_unwind_requests() {
	grep -o 'url="/buildid/[0-9a-f]*/unwind"' "$1" | sort | uniq -c | sort -rn | awk 'NR==1 { print $1 } END { if (NR==0) print 0 }'
}
