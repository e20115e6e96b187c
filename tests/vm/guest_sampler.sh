# Runs inside the VM (tests/vm/vm-run): the sampler and the agent on this
# kernel.  Output files land in the cwd (/out), which comes back to the host;
# the host checks them (tests/vm/test_kernels.sh).
echo "kernel $(uname -r)"
D=$FIXTURES/bpf
# The stripped -fomit-frame-pointer fixture through its shared library and
# a signal handler; sampled once it runs (its libraries are mapped).
$D/deep-stripped mixed 30 50000 & pid=$!
sleep 0.5
$BIN/unwind-sample --pid $pid --duration 3 --frequency 199 --stats >mixed.folded 2>mixed.err
echo "unwind-sample status $?"
kill $pid
