# Runs inside the VM for tests/bench/bench_bpf.sh: the host bench's
# measurement (33-frame stacks of deep-fp, bpf_stats run time per sample),
# RUNS runs of the DWARF walk and of the kernel's frame-pointer walk,
# alternated.  One line per run: MODE ns/sample ns/frame frames/sample.
D=$FIXTURES/bpf
$D/deep-fp chain 28 & pid=$!
sleep 0.5
i=0
while [ $i -lt ${RUNS:-3} ]; do
	for mode in dwarf kernel-fp; do
		$BIN/unwind-sample --pid $pid --duration 2 --frequency 499 --mode $mode --no-kernel \
			--stats 2>err >/dev/null
		grep -q 'walk by tail' err && echo "walk tail-calls"
		sed -n "s/.*: \([0-9.]*\) ns\/sample, \([0-9.]*\) ns\/frame, \([0-9.]*\) frames\/sample/$mode \1 \2 \3/p" err
	done
	i=$((i + 1))
done
kill $pid
