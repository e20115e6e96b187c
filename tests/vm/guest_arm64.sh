# Runs inside the arm64 VM (tests/vm/test_arm64.sh): the static arm64
# unwind-sample samples the static -O2 -fomit-frame-pointer corepoints
# fixture (main spinning in a leaf; threads in a 150-deep recursion, in libc
# string functions, in qsort callbacks, in a signal handler) with the BPF
# unwinder.
echo "kernel $(uname -r) $(uname -m)"
$FIXTURES/bpf/corepoints 0 >/dev/null & pid=$!
sleep 1
SAMPLER_VERBOSE=1 $BIN/unwind-sample --pid $pid --duration 4 --frequency 49 --no-kernel \
	--limits frames=256 --stats >sample.folded 2>sample.err
echo "unwind-sample status $?"
kill $pid
