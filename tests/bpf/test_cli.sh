#!/usr/bin/env bash
# unwind-sample's command line: bad input gets a one-line error and a
# non-zero exit; -- COMMAND mode samples a child and stops it.
. "$TOP/tests/lib/check.sh"
scratch
US=$BIN/unwind-sample
bad() { # NAME ARGS...: must fail with exactly one line on stderr, nothing on stdout
	local name=$1; shift
	"$US" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"; local rc=$?
	if [[ $rc != 0 && ! -s $SCRATCH/out && $(wc -l <"$SCRATCH/err") == 1 ]]; then ok "$name"
	else fail "$name" "rc $rc, stderr: $(head -c 200 "$SCRATCH/err")"; fi
}
bad cli_no_target
bad cli_both_targets --pid 1 -- true
bad cli_bad_pid --pid abc
bad cli_missing_pid --pid 2147483647
bad cli_bad_frequency --frequency 0 --pid 1
bad cli_bad_duration --duration -1 --pid 1
bad cli_bad_mode --mode nope --pid 1
bad cli_unknown_limit --limits nope=1 --pid 1
bad cli_too_many_frames --limits frames=100000 --pid 1
bad cli_bad_ringbuf --limits ringbuf_bytes=5000 --pid 1
"$US" --help | grep -q -- "--frequency" && ok cli_help || fail cli_help "no usage text"

if [[ $(id -u) != 0 || ! -r /sys/kernel/btf/vmlinux ]]; then
	skip cli_command_mode "needs root and kernel BTF"; finish
fi
bad cli_command_missing --duration 2 -- /nonexistent/program
timeout -k 5 60 "$US" --duration 1 --frequency 499 --stats -- "$FIXTURES/bpf/deep" chain 10 \
	>"$SCRATCH/cmd" 2>"$SCRATCH/cmd.err"
rc=$?
id=$(readelf -n "$FIXTURES/bpf/deep" | awk '/Build ID/{print $3}')
n=$(grep -c "^$id+0x" "$SCRATCH/cmd")
if [[ $rc == 0 && $n -ge 1 ]] && grep -q "map memory" "$SCRATCH/cmd.err"; then ok cli_command_mode
else fail cli_command_mode "rc $rc, $n stacks: $(tail -2 "$SCRATCH/cmd.err")"; fi
# The child was stopped at the end of the duration.
sleep 0.2
pgrep -f "fixtures/bpf/deep chain 10" >/dev/null && fail cli_command_stopped "child still running" ||
	ok cli_command_stopped
finish
