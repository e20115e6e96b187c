#!/usr/bin/env bash
# JIT: node --perf-basic-prof runs a CPU-bound script; the agent snapshots
# /tmp/perf-<pid>.map (deduplicated by SHA-256), names the JIT mapping after
# the snapshot, carries it in the profile, and `symbolize --perf-map` on the
# snapshot names the JS function.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
need_bpf jit_snapshot_written jit_snapshot_in_profile jit_names_resolved
command -v node >/dev/null || { for n in jit_snapshot_written jit_snapshot_in_profile jit_names_resolved; do skip $n "node is not installed"; done; exit 0; }
# node leaves isolate-*-v8.log in its working directory: run it in the scratch dir.
(cd "$SCRATCH" && exec node --perf-basic-prof "$TOP/tests/fixtures/agent-hooks/hot.js" 20 >/dev/null) & N=$!; BG+=("$N")
# Let V8 optimize hotFunction first.
for i in $(seq 50); do grep -q hotFunction /tmp/perf-$N.map 2>/dev/null && break; sleep 0.1; done
timeout 60 "$AGENT" --pid "$N" --no-upload --output "$SCRATCH/out" --cache-dir "$SCRATCH/cache" \
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
finish
