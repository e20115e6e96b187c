#!/usr/bin/env bash
# The JVM: openjdk-17 with -XX:+PreserveFramePointer runs a CPU-bound
# program; the agent asks the JVM for its perf map (Compiler.perfmap through
# the attach socket, as jcmd does), carries the snapshot, and the server
# names the Java frames.  Oracles: Google pprof's -top (the hot Java method
# on top) and an independent pprof decoder (stacks reach the JVM's thread
# start; interpreted frames show as the interpreter, as in perf).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
CHECKS=(jvm_perf_map_requested jvm_hot_method_on_top jvm_stacks_reach_thread_start jvm_interpreter_frames)
need_bpf "${CHECKS[@]}"
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
	for n in "${CHECKS[@]}"; do skip $n "openjdk-17-jdk-headless is not installed"; done; exit 0
fi
javac -d "$SCRATCH/classes" "$TOP/tests/fixtures/agent-hooks/Hot.java" || { fail jvm_perf_map_requested "javac failed"; finish; }
# The server has the JVM's own objects (libjvm.so names the thread start).
JHOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
dil_start S --data "$SCRATCH/data" --rescan 0 --no-watch --scan "$JHOME/lib/server/libjvm.so" \
	--scan "$LIBC" --scan "$LDSO" $(f=/usr/lib/debug/.build-id/${LIBC_ID:0:2}/${LIBC_ID:2}.debug; [[ -r $f ]] && echo --scan "$f")
(cd "$SCRATCH" && exec java -XX:+PreserveFramePointer -cp "$SCRATCH/classes" Hot 14 >/dev/null 2>&1) & J=$!; BG+=("$J")
sleep 2 # let the JIT compile hotLoop
timeout 60 "$AGENT" --pid "$J" --server "$S_URL" --output "$SCRATCH/out" --cache-dir "$SCRATCH/cache" \
	--frequency 99 --interval 2 --duration 5 --stats-file "$SCRATCH/st.json" 2>"$SCRATCH/err"
kill "$J" 2>/dev/null; wait "$J" 2>/dev/null; rm -f "/tmp/perf-$J.map"
n=$(json "$SCRATCH/st.json" jvm_perf_maps 2>/dev/null || echo 0)
(( n >= 1 )) && ok jvm_perf_map_requested || fail jvm_perf_map_requested "$(cat "$SCRATCH/err") $(cat "$SCRATCH/st.json")"
# Wait until the worker has named the JIT frames, then read the stored profile.
for i in $(seq 40); do
	curl -s "$S_URL/profiles" -o "$SCRATCH/stored.pb.gz"
	python3 - "$SCRATCH/stored.pb.gz" <<'PY' && break
import os, sys
sys.path.insert(0, os.environ['TOP'] + '/contrib')
from pprof_decode import parse
p = parse(sys.argv[1])
sys.exit(not any(f['name'].find('Hot.hotLoop') >= 0 for f in p['functions'].values()))
PY
	sleep 0.5
done
. "$TOP/tests/lib/pprof.sh"
if ensure_pprof; then
	env HOME="$SCRATCH" PPROF_TMPDIR="$SCRATCH" "$PPROF" -symbolize=none -top "$SCRATCH/stored.pb.gz" \
		>"$SCRATCH/top.txt" 2>&1
	first=$(awk 'found { print; exit } /^ *flat +flat%/ { found = 1 }' "$SCRATCH/top.txt")
	echo "# pprof -top: $first"
	[[ $first == *Hot.hotLoop* ]] && ok jvm_hot_method_on_top ||
		fail jvm_hot_method_on_top "$(head -12 "$SCRATCH/top.txt" | tr '\n' ' ')"
else
	skip jvm_hot_method_on_top "pprof could not be built"
fi
r=$(python3 - "$SCRATCH/stored.pb.gz" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ['TOP'] + '/contrib')
from pprof_decode import parse
p = parse(sys.argv[1])
def names(s):
    out = []
    for lid in s['locs']:
        l = p['locations'][lid]
        out += [p['functions'][ln[1]]['name'] for ln in l['lines']] or ['?']
    return out
hot = full = interp = 0
for s in p['samples']:
    n = names(s)
    if not any('Hot.hotLoop' in x for x in n):
        continue
    hot += s['values'][0]
    # HotSpot's thread start, then libc's start_thread and clone3 (named
    # with libc6-dbg, else at least frames in libc).
    root = [p['mappings'][p['locations'][lid][2]]['filename'] for lid in s['locs'][-2:]]
    libc_root = n[-1] in ('clone3', 'clone') or all('libc.so' in f for f in root)
    full += s['values'][0] if 'thread_native_entry(Thread*)' in n and libc_root else 0
    interp += s['values'][0] if 'Interpreter' in n else 0
print(json.dumps({'hot_samples': hot, 'reach_thread_start': full, 'with_interpreter': interp}))
PY
)
echo "# $r"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["hot_samples"] >= 50 and r["reach_thread_start"] >= 0.99 * r["hot_samples"]))' "$r" &&
	ok jvm_stacks_reach_thread_start || fail jvm_stacks_reach_thread_start "$r"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not r["with_interpreter"])' "$r" &&
	ok jvm_interpreter_frames || fail jvm_interpreter_frames "$r"
finish
