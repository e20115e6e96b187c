#!/usr/bin/env bash
# Fidelity against `perf record --call-graph dwarf` on a real program built
# without frame pointers (Debian's lua5.4 running a CPU-bound script): both
# sample the same process at the same time; both stack sets are symbolized
# the same way (FDE ranges from readelf); >= 99% of our samples' call paths
# must be ones perf saw (see fidelity_check.py for the exact rule).
. "$TOP/tests/lib/check.sh"
scratch
if [[ $(id -u) != 0 ]]; then skip fidelity_perf "needs root (CAP_BPF + CAP_PERFMON)"; finish; fi
if [[ ! -r /sys/kernel/btf/vmlinux ]]; then skip fidelity_perf "no kernel BTF"; finish; fi
for t in perf lua5.4 readelf python3; do
	command -v $t >/dev/null || { skip fidelity_perf "$t not installed"; finish; }
done
lua5.4 "$TOP/tests/fixtures/bpf/cpu.lua" 6 >/dev/null & lua=$!
sleep 0.3
cp /proc/$lua/maps "$SCRATCH/maps"
perf record -q --call-graph dwarf -F 1999 -p $lua -o "$SCRATCH/perf.data" -- sleep 3 \
	>"$SCRATCH/perf.log" 2>&1 & perfpid=$!
timeout -k 5 60 "$BIN/unwind-sample" --pid $lua --duration 3 --frequency 299 --no-kernel \
	>"$SCRATCH/ours" 2>"$SCRATCH/ours.err"
rc=$?
wait $perfpid; prc=$?
kill $lua 2>/dev/null; wait $lua 2>/dev/null
if [[ $rc != 0 ]]; then fail fidelity_perf "unwind-sample failed: $(tail -1 "$SCRATCH/ours.err")"; finish; fi
if [[ $prc != 0 ]]; then skip fidelity_perf "perf record failed: $(tail -1 "$SCRATCH/perf.log")"; finish; fi
perf script -i "$SCRATCH/perf.data" -F ip,dso --no-inline >"$SCRATCH/perf.txt" 2>/dev/null
read callers matched total exact nperf ncomplete < <(python3 "$TOP/tests/bpf/fidelity_check.py" \
	"$SCRATCH/maps" "$SCRATCH/ours" "$SCRATCH/perf.txt")
echo "# ours $total samples: $callers call paths seen by perf, $matched full stacks, $exact identical; perf $nperf samples ($ncomplete to _start)"
if [[ $total -ge 300 && $ncomplete -ge 300 && $(( callers * 100 )) -ge $(( total * 99 )) ]]; then
	ok fidelity_perf_call_paths
else
	fail fidelity_perf_call_paths "$callers of $total samples have call paths perf saw (need 99%)"
fi
grep -q "walked to the end (100.00%)\|walked to the end (99\." "$SCRATCH/ours.err" &&
	ok fidelity_lua_walks_complete ||
	fail fidelity_lua_walks_complete "$(grep 'walked to the end' "$SCRATCH/ours.err")"
finish
