# Runs inside the VM booted with a BPF feature taken away (test_kernels.sh
# boots it with lockdown=confidentiality: no bpf_probe_read_kernel for
# tracing programs): both programs refuse in one line naming it.
echo "kernel $(uname -r) lockdown: $(cat /sys/kernel/security/lockdown 2>/dev/null)"
A=$FIXTURES/agent-hooks
$A/spin 3 >/dev/null & pid=$!
SAMPLER_VERBOSE=1 $BIN/unwind-sample --pid $pid --duration 1 >/dev/null 2>verbose.err
$BIN/unwind-sample --pid $pid --duration 1 >/dev/null 2>nofeature-sample.err
echo "nofeature-sample status $?"
$BIN/profiler-agent --server http://127.0.0.1:9 --pid $pid --no-upload --output /tmp/agent-out \
	--cache-dir /tmp/cache --duration 1 2>nofeature-agent.err
echo "nofeature-agent status $?"
kill $pid
