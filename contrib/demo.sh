#!/usr/bin/env bash
# make demo: the whole loop on this machine, end to end.
#   1. start debuginfod-lite (loopback, a fresh data directory)
#   2. upload the debuginfo of a stripped -O2 -fomit-frame-pointer program
#   3. profile that program and a real one (lua5.4) with profiler-agent (BPF)
#   4. print the top functions with file:line and write a flame graph
# Needs root and kernel BTF (the BPF sampler).  Output goes to ./demo-out.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD BUILD=${BUILD:-build}
BIN=$TOP/$BUILD/bin FIX=$TOP/$BUILD/fixtures/agent-hooks
OUT=$TOP/demo-out
if [[ $(id -u) != 0 || ! -r /sys/kernel/btf/vmlinux ]]; then
	echo "demo: needs root and kernel BTF for the BPF sampler" >&2; exit 1
fi
rm -rf "$OUT" && mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

echo "demo-token" >"$WORK/tokens"
mkdir -p "$WORK/scan" && cp "$FIX/spin" "$WORK/scan/"
echo "== 1. debuginfod-lite on 127.0.0.1 (data in $WORK/data)"
timeout 300 "$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$WORK/port" --data "$WORK/data" \
	--token-file "$WORK/tokens" --scan "$WORK/scan" --scan /usr/lib/x86_64-linux-gnu \
	--scan /usr/bin/lua5.4 --scan /usr/lib/debug --rescan 0 --no-watch 2>"$OUT/server.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $WORK/port ]] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$WORK/port")
echo "   $URL"

echo "== 2. CI uploads the debuginfo of the stripped program"
"$BIN/debuginfod-upload" --server "$URL" --token-file "$WORK/tokens" "$FIX/spin.debug"

echo "== 3. profiler-agent samples both programs for 6 s (no frame pointers anywhere)"
"$FIX/spin" 30 >/dev/null & PIDS+=($!); SPIN=$!
lua5.4 tests/fixtures/bpf/cpu.lua 30 >/dev/null & PIDS+=($!); LUA=$!
for pid in "$SPIN" "$LUA"; do
	"$BIN/profiler-agent" --server "$URL" --token-file "$WORK/tokens" --pid "$pid" \
		--frequency 99 --interval 3 --duration 6 --label demo=yes \
		--cache-dir "$WORK/cache-$pid" --stats-file "$OUT/agent-$pid.json" 2>>"$OUT/agent.log" &
	PIDS+=($!)
done
wait "${PIDS[@]:3}" 2>/dev/null || true
kill "$SPIN" "$LUA" 2>/dev/null || true

echo "== 4. the service symbolizes what the agents sent (build-IDs and addresses only)"
for _ in $(seq 40); do
	curl -sf "$URL/profiles/list" -o "$OUT/profiles.json" &&
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); l=d if isinstance(d,list) else d.get("profiles",[]); sys.exit(not l or any(p["state"]=="new" for p in l))' "$OUT/profiles.json" && break
	sleep 0.5
done
for exe in spin lua5.4; do
	curl -sf "$URL/profiles?label=exe=$exe" -o "$OUT/$exe.pb.gz"
	python3 contrib/flamegraph.py "$OUT/$exe.pb.gz" "$OUT/$exe.svg" --title "$exe: CPU flame graph"
done
. tests/lib/pprof.sh
SCRATCH=$WORK
if ensure_pprof; then
	for exe in spin lua5.4; do
		echo; echo "-- top functions of $exe (file:line)"
		HOME=$WORK PPROF_TMPDIR=$WORK "$PPROF" -symbolize=none -top -lines -nodecount=12 "$OUT/$exe.pb.gz" 2>/dev/null |
			sed -n '/flat%/,$p'
	done
else
	echo "(Google pprof could not be built here; the profiles are in $OUT)"
fi
echo
echo "Flame graphs: $OUT/spin.svg $OUT/lua5.4.svg (open in a browser)"
echo "Profiles:     $OUT/*.pb.gz (pprof -http=: FILE)"
