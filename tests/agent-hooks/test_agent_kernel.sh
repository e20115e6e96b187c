#!/usr/bin/env bash
# Kernel frames: the agent sends them as offsets from _text under the
# kernel's build-ID (modules as offsets from their base under theirs) and
# carries a kallsyms snapshot once; the server and `symbolize pprof` name
# them from it.  Oracle: `perf record -g` of the same syscall-heavy workload
# at the same time, and the names `perf script` gives the same addresses.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
CHECKS=(kernel_frames_normalized kallsyms_carried_once kernel_named_as_perf_server
	kernel_named_as_perf_offline kallsyms_not_resent module_frames)
need_bpf "${CHECKS[@]}"
command -v perf >/dev/null || { for n in "${CHECKS[@]}"; do skip $n "perf is not installed"; done; exit 0; }
TEXT=$(awk '$3 == "_text" { print $1; exit }' /proc/kallsyms)
[[ $TEXT =~ ^0*$ ]] && { for n in "${CHECKS[@]}"; do skip $n "kallsyms addresses are hidden"; done; exit 0; }
dil_start S --data "$SCRATCH/data" --rescan 0 --no-watch
"$AFIX/sysbusy" 6 & W=$!; BG+=("$W")
sleep 0.3
perf record -q -g -F 499 -p "$W" -o "$SCRATCH/perf.data" -- sleep 4 2>"$SCRATCH/perf.err" & PR=$!
timeout 60 "$AGENT" --pid "$W" --server "$S_URL" --output "$SCRATCH/out" --cache-dir "$SCRATCH/cache" \
	--frequency 499 --interval 2 --duration 4 --stats-file "$SCRATCH/st.json" 2>"$SCRATCH/err"
wait "$PR"
perf script -i "$SCRATCH/perf.data" -F ip,sym >"$SCRATCH/perf.txt" 2>/dev/null

# The build-ID the kernel's own notes carry, read here independently.
KID=$(python3 - <<'PY'
import struct
d = open('/sys/kernel/notes', 'rb').read(); o = 0
while o + 12 <= len(d):
    n, s, t = struct.unpack_from('<III', d, o); name = o + 12; desc = name + (n + 3) // 4 * 4
    if t == 3 and d[name:name + n] == b'GNU\0':
        print(d[desc:desc + s].hex()); break
    o = desc + (s + 3) // 4 * 4
PY
)
python3 - "$KID" "$SCRATCH/out" <<'PY' && ok kernel_frames_normalized || fail kernel_frames_normalized "see above"
import glob, os, sys
sys.path.insert(0, os.environ['TOP'] + '/contrib')
from pprof_decode import parse
kid, out = sys.argv[1], sys.argv[2]
n = 0
for f in sorted(glob.glob(out + '/*.pb.gz')):
    p = parse(f)
    for l in p['locations'].values():
        m = p['mappings'][l[2]]
        if m['filename'] == '[kernel.kallsyms]':
            assert m['build_id'] == kid, (m['build_id'], kid)
            assert l.get(3, 0) < 1 << 40, 'not an offset from _text: 0x%x' % l.get(3, 0)
            n += 1
assert n > 50, n
PY
python3 - "$SCRATCH/out" <<'PY' && ok kallsyms_carried_once || fail kallsyms_carried_once
import glob, hashlib, os, sys
sys.path.insert(0, os.environ['TOP'] + '/contrib')
from pprof_decode import parse
out = sys.argv[1]
carried = []
for f in sorted(glob.glob(out + '/*.pb.gz')):
    for c in parse(f)['comments']:
        if c.startswith('profiler-agent.kallsyms '):
            head, body = c.split('\n', 1)
            h = head.split('sha256=')[1].split()[0]
            assert hashlib.sha256(body.encode()).hexdigest() == h
            assert open('%s/jit/%s.kallsyms' % (out, h)).read() == body
            carried.append(h)
assert len(carried) == 1, carried
PY
# The server names them (its worker symbolizes in the background).
for i in $(seq 40); do
	curl -s "$S_URL/profiles" -o "$SCRATCH/stored.pb.gz"
	r=$(python3 "$TOP/tests/agent-hooks/kernel_vs_perf.py" --text "$TEXT" \
		--perf-script "$SCRATCH/perf.txt" "$SCRATCH/stored.pb.gz")
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r["named"] < r["frames"])' "$r" && break
	sleep 0.5
done
echo "# server: $r"
agrees() { python3 -c 'import json,sys; r=json.loads(sys.argv[1])
sys.exit(not (r["frames"] > 100 and r["compared"] >= r["frames"] / 2 and r["agree"] >= 0.999 * r["compared"]))' "$1"; }
agrees "$r" && ok kernel_named_as_perf_server || fail kernel_named_as_perf_server "$r"
# Offline: the first profile carries the snapshot, later ones find it in --perf-map-dir.
for f in "$SCRATCH"/out/*.pb.gz; do
	"$BIN/symbolize" pprof "$f" -o "${f%.pb.gz}.sym" --perf-map-dir "$SCRATCH/out/jit" --no-cache 2>>"$SCRATCH/sym.err"
done
r=$(python3 "$TOP/tests/agent-hooks/kernel_vs_perf.py" --text "$TEXT" --perf-script "$SCRATCH/perf.txt" "$SCRATCH"/out/*.sym)
echo "# offline: $r"
agrees "$r" && ok kernel_named_as_perf_offline || fail kernel_named_as_perf_offline "$r"
# A second agent run on this kernel: the server has the snapshot, so it is not
# sent again, and the new profiles are still named.
"$AFIX/sysbusy" 3 & W2=$!; BG+=("$W2")
timeout 60 "$AGENT" --pid "$W2" --server "$S_URL" --output "$SCRATCH/out2" --cache-dir "$SCRATCH/cache" \
	--frequency 199 --interval 1 --duration 2 --stats-file "$SCRATCH/st2.json" 2>"$SCRATCH/err2"
first=$(json "$SCRATCH/st.json" kallsyms_snapshot 2>/dev/null) second=$(json "$SCRATCH/st2.json" kallsyms_snapshot 2>/dev/null)
carried=$(cat "$SCRATCH"/out2/*.pb.gz | gzip -dc | grep -ac 'profiler-agent.kallsyms sha256=' || true)
for i in $(seq 40); do
	curl -s "$S_URL/profiles?label=pid=$W2" -o "$SCRATCH/stored2.pb.gz"
	r2=$(python3 "$TOP/tests/agent-hooks/kernel_vs_perf.py" --text "$TEXT" --perf-script /dev/null "$SCRATCH/stored2.pb.gz")
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["frames"] and r["named"] == r["frames"]))' "$r2" && break
	sleep 0.5
done
if [[ $first == sent && $second == stored && $carried == 0 ]] &&
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["frames"] > 20 and r["named"] == r["frames"]))' "$r2"; then
	ok kallsyms_not_resent
else
	fail kallsyms_not_resent "first run '$first', second '$second', carried $carried times; $r2"
fi
if [[ -r /proc/modules ]] && [[ -n $(head -c1 /proc/modules) ]]; then
	skip module_frames "no module-heavy workload here yet (test_kernel_info and test_kallsyms check module frames)"
else
	skip module_frames "this kernel has no loadable modules (test_kernel_info and test_kallsyms check module frames)"
fi
finish
