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
timeout -k 5 60 "$US" --duration 1 --frequency 499 --stats --symbolize -- "$FIXTURES/bpf/deep" chain 10 \
	>"$SCRATCH/cmd" 2>"$SCRATCH/cmd.err"
rc=$?
id=$(readelf -n "$FIXTURES/bpf/deep" | awk '/Build ID/{print $3}')
n=$(grep -c "^$id+0x" "$SCRATCH/cmd")
if [[ $rc == 0 && $n -ge 1 ]] && grep -q "map memory" "$SCRATCH/cmd.err"; then ok cli_command_mode
else fail cli_command_mode "rc $rc, $n stacks: $(tail -2 "$SCRATCH/cmd.err")"; fi
grep -q ":chain_39;" "$SCRATCH/cmd" && ok cli_command_mode_chain || fail cli_command_mode_chain "no chain_39"
# The child was stopped at the end of the duration.
sleep 0.2
pgrep -f "fixtures/bpf/deep chain 10" >/dev/null && fail cli_command_stopped "child still running" ||
	ok cli_command_stopped

# Kernel stacks: dd spends its time in read/write system calls.  Those
# samples carry kernel frames on top of a complete user walk from a syscall.
timeout -k 5 60 "$US" --duration 1 --frequency 499 -- dd if=/dev/zero of=/dev/null bs=64k \
	count=100000000 >"$SCRATCH/dd" 2>"$SCRATCH/dd.err"
read kern total < <(awk '{ n = $NF; t += n; if ($0 ~ /;\[k\]\+0xffff[0-9a-f]+/ && $0 !~ /truncated/) k += n }
	END { print k + 0, t + 0 }' "$SCRATCH/dd")
if [[ $total -gt 50 && $(( kern * 2 )) -ge $total ]]; then ok cli_kernel_stacks
else fail cli_kernel_stacks "$kern of $total dd samples have kernel frames over a complete user stack"; fi
finish
