# Runs inside the VM (tests/vm/vm-run), after a prelude that sets SPIN_ID
# (the agent fixture's build-ID): the sampler and the agent on this kernel,
# then both again without kernel BTF.  Output files land in the cwd (/out),
# which comes back to the host; tests/vm/test_kernels.sh checks them.
echo "kernel $(uname -r)"
D=$FIXTURES/bpf A=$FIXTURES/agent-hooks

# 1. unwind-sample: the stripped -fomit-frame-pointer fixture through its
# shared library and a signal handler, sampled once it runs.
$D/deep-stripped mixed 30 50000 & pid=$!
sleep 0.5
$BIN/unwind-sample --pid $pid --duration 3 --frequency 199 --stats >mixed.folded 2>mixed.err
echo "unwind-sample status $?"
kill $pid

# 2. profiler-agent against debuginfod-lite on loopback: a followed shell
# forks and execs the stripped spin fixture; the agent fetches its tables
# (and libc's, ld.so's) when it starts, samples, writes pprof to --output.
LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
LDSO=$(readlink -f /lib64/ld-linux-x86-64.so.2)
$BIN/debuginfod-lite --listen 127.0.0.1:0 --port-file dil.port --data /tmp/dil \
	--scan $A/spin --scan $LIBC --scan $LDSO --rescan 0 >/dev/null 2>dil.log & dil=$!
i=0
while [ $i -lt 100 ] && ! [ -s dil.port ]; do sleep 0.1; i=$((i + 1)); done
URL=http://127.0.0.1:$(cat dil.port)
i=0
while [ $i -lt 100 ] && ! wget -q -O /dev/null $URL/buildid/$SPIN_ID/unwind; do
	sleep 0.1; i=$((i + 1))
done
# The shell forks spin once the agent says it has started (seconds on an
# emulated CPU, more under ASan).
sh -c "while ! [ -e /tmp/go ]; do sleep 0.1; done; $A/spin 4 >/dev/null; true" & parent=$!
$BIN/profiler-agent --server $URL --pid $parent --no-upload --output agent.out \
	--cache-dir /tmp/agent-cache --frequency 199 --interval 1 --duration 30 \
	--stats-file agent.json 2>agent.err & agent=$!
i=0
while [ $i -lt 600 ] && ! grep -q 'started' agent.err && kill -0 $agent 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
done
touch /tmp/go
wait $agent
echo "profiler-agent status $?"
wait $parent
kill $dil

# 3. No BTF: an empty tmpfs over /sys/kernel/btf; both refuse in one line.
mount -t tmpfs nobtf /sys/kernel/btf
$A/spin 3 >/dev/null & pid=$!
$BIN/unwind-sample --pid $pid --duration 1 >/dev/null 2>nobtf-sample.err
echo "nobtf-sample status $?"
$BIN/profiler-agent --server http://127.0.0.1:9 --pid $pid --no-upload --output /tmp/agent-out \
	--cache-dir /tmp/nobtf-cache --duration 1 2>nobtf-agent.err
echo "nobtf-agent status $?"
kill $pid
umount /sys/kernel/btf
