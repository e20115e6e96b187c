#!/usr/bin/env bash
# Go stacks without frame pointers or CFI: the stripped Go fixture (only
# .gopclntab) is sampled live while it writes its own runtime/pprof CPU
# profile.  >= 99% of our samples must stop cleanly at a Go root with every
# caller->callee edge seen in Go's profile, < 0.5% as no-progress
# (tests/bpf/go_stacks_check.py; names from `go tool addr2line`).
. "$TOP/tests/lib/check.sh"
scratch
if [[ $(id -u) != 0 ]]; then skip live_go_stacks "needs root (CAP_BPF + CAP_PERFMON)"; finish; fi
if [[ ! -r /sys/kernel/btf/vmlinux ]]; then skip live_go_stacks "no kernel BTF"; finish; fi
command -v go >/dev/null || { skip live_go_stacks "go not installed (golang-go)"; finish; }
GO=$FIXTURES/go/spin-stripped
[[ -x $GO ]] || { fail live_go_stacks "fixture $GO not built (make fixtures)"; finish; }

# Go's profile at 500 Hz over the whole run, so that rare but real paths
# (sysmon's) that we sample are in it too.
"$GO" -duration 4s -cpuprofile "$SCRATCH/go.prof" -cpuprofile-rate 500 >/dev/null 2>&1 & pid=$!
sleep 0.5
timeout -k 5 60 "$BIN/unwind-sample" --pid $pid --duration 2.5 --frequency 499 --no-kernel \
	>"$SCRATCH/ours.txt" 2>"$SCRATCH/ours.err"
rc=$?
wait $pid
if [[ $rc != 0 ]]; then
	fail live_go_stacks "unwind-sample failed: $(tail -2 "$SCRATCH/ours.err")"
	finish
fi
read total complete edges both noprog handler unseen < <(GOCACHE=$SCRATCH/gocache HOME=$SCRATCH PPROF_TMPDIR=$SCRATCH \
	python3 "$TOP/tests/bpf/go_stacks_check.py" "$GO" "$SCRATCH/ours.txt" "$SCRATCH/go.prof")
echo "# go stacks: $total samples, $complete complete, $edges with edges seen by Go," \
	"$both both, $noprog no-progress; $handler more in Go's own SIGPROF handler; unseen: $unseen"
if [[ ${total:-0} -gt 100 && $(( both * 100 )) -ge $(( total * 99 )) ]]; then
	ok live_go_stacks_complete_and_match_pprof
else
	fail live_go_stacks_complete_and_match_pprof "$both of $total samples complete and matching (unseen: $unseen)"
fi
if [[ ${total:-0} -gt 100 && $(( noprog * 200 )) -lt $total ]]; then
	ok live_go_stacks_no_progress_below_half_percent
else
	fail live_go_stacks_no_progress_below_half_percent "$noprog of $total samples stopped as no-progress"
fi
grep -q "^$("$BIN/unwind-compile" --stats "$GO" | python3 -c 'import json,sys; print(json.load(sys.stdin)["build_id"])')+0x" \
	"$SCRATCH/ours.txt" && ok live_go_frames_named_by_identity ||
	fail live_go_frames_named_by_identity "frames are not <go identity>+0x<addr>"
finish
