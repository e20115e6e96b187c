#!/usr/bin/env bash
# JIT: node --perf-basic-prof runs a CPU-bound script; the agent snapshots
# /tmp/perf-<pid>.map (deduplicated by SHA-256), names the JIT mapping after
# the snapshot, carries it in the profile, and `symbolize --perf-map` on the
# snapshot names the JS function.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
CHECKS=(jit_snapshot_written jit_snapshot_in_profile jit_names_resolved jit_names_from_server)
need_bpf "${CHECKS[@]}"
command -v node >/dev/null || { for n in "${CHECKS[@]}"; do skip $n "node is not installed"; done; exit 0; }
# The profile store names JIT frames from the snapshot the profile carries.
dil_start S --data "$SCRATCH/data" --rescan 0 --no-watch
# node leaves isolate-*-v8.log in its working directory: run it in the scratch dir.
(cd "$SCRATCH" && exec node --perf-basic-prof "$TOP/tests/fixtures/agent-hooks/hot.js" 20 >/dev/null) & N=$!; BG+=("$N")
# Let V8 optimize hotFunction first.
for i in $(seq 50); do grep -q hotFunction /tmp/perf-$N.map 2>/dev/null && break; sleep 0.1; done
timeout 60 "$AGENT" --pid "$N" --server "$S_URL" --output "$SCRATCH/out" --cache-dir "$SCRATCH/cache" \
	--frequency 99 --interval 1 --duration 3 --stats-file "$SCRATCH/st.json" 2>"$SCRATCH/err"
kill "$N" 2>/dev/null; wait "$N" 2>/dev/null; rm -f /tmp/perf-$N.map
maps=$(ls "$SCRATCH"/out/jit/*.map 2>/dev/null | wc -l)
(( maps >= 1 )) && ok jit_snapshot_written || fail jit_snapshot_written "$(cat "$SCRATCH/st.json")"
# Each snapshot file is named by its content's SHA-256 and is carried once.
python3 - "$SCRATCH/out" <<'PY' && ok jit_snapshot_in_profile || fail jit_snapshot_in_profile
import glob, hashlib, os, sys, subprocess, json
sys.path.insert(0, os.environ['TOP'] + '/tests/agent-hooks')
from pprof_check import parse
out = sys.argv[1]
carried = {}
for f in sorted(glob.glob(out + '/*.pb.gz')):
    for c in parse(f)['comments']:
        if c.startswith('profiler-agent.jit perf-map '):
            head, body = c.split('\n', 1)
            h = head.split('sha256=')[1].split()[0]
            assert h not in carried, 'snapshot carried twice'
            carried[h] = body.encode()
assert carried
for path in glob.glob(out + '/jit/*.map'):
    data = open(path, 'rb').read()
    h = os.path.basename(path)[:-4]
    assert hashlib.sha256(data).hexdigest() == h, path
    assert carried.get(h) == data, 'content differs from the profile comment'
PY
r=$($CHECK jit --map-dir "$SCRATCH/out/jit" --symbolize "$BIN/symbolize" "$SCRATCH"/out/*.pb.gz)
[[ $r == *hotFunction* ]] && ok jit_names_resolved || fail jit_names_resolved "$r"
. "$TOP/tests/lib/pprof.sh"
if ensure_pprof; then
	for i in $(seq 40); do
		curl -s "$S_URL/profiles" -o "$SCRATCH/stored.pb.gz"
		env HOME="$SCRATCH" PPROF_TMPDIR="$SCRATCH" "$PPROF" -symbolize=none -top "$SCRATCH/stored.pb.gz" \
			>"$SCRATCH/top.txt" 2>&1
		grep -q hotFunction "$SCRATCH/top.txt" && break
		sleep 0.5
	done
	grep -q hotFunction "$SCRATCH/top.txt" && ok jit_names_from_server ||
		fail jit_names_from_server "$(head -12 "$SCRATCH/top.txt" | tr '\n' ' ')"
else
	skip jit_names_from_server "pprof could not be built"
fi
finish
