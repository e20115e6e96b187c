#!/usr/bin/env bash
# BPF sampler cost from the kernel's BPF run-time statistics
# (bpf_enable_stats), on the same 32-frame stacks, in the same run:
#   ours:      table-driven DWARF walk (unwind-sample --mode dwarf)
#   reference: the kernel's frame-pointer walk, bpf_get_stack(BPF_F_USER_STACK)
# The fixture is the frame-pointer build so both walks see the same frames.
# Target (DESIGN.md §6): a 32-frame DWARF walk <= 10 us per sample.
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}" "${BUILD:=build}"
BIN=$TOP/$BUILD/bin FIX=$TOP/$BUILD/fixtures/bpf
if [[ $(id -u) != 0 || ! -r /sys/kernel/btf/vmlinux ]]; then
	echo "bench_bpf: skipped (needs root and kernel BTF)"; exit 0
fi
RUNS=${RUNS:-5} SECONDS_PER_RUN=${SECONDS_PER_RUN:-2} HZ=${HZ:-999}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"; [[ -n ${pid:-} ]] && kill $pid 2>/dev/null' EXIT

# 28 chain frames + chain_spin + main + 2 libc + _start = 33 frames
"$FIX/deep-fp" chain 28 & pid=$!
sleep 0.3

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
run_once() { # MODE: one run, appended to $tmp/MODE.runs
	"$BIN/unwind-sample" --pid $pid --duration "$SECONDS_PER_RUN" --frequency "$HZ" \
		--mode "$1" --no-kernel --stats >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
	sed -n 's/.*: \([0-9.]*\) ns\/sample, \([0-9.]*\) ns\/frame, \([0-9.]*\) frames\/sample/\1 \2 \3/p' \
		"$tmp/err" >>"$tmp/$1.runs"
}
summarize() { # MODE -> $tmp/MODE.sample, .frame, .depth (medians)
	cut -d' ' -f1 "$tmp/$1.runs" | median >"$tmp/$1.sample"
	cut -d' ' -f2 "$tmp/$1.runs" | median >"$tmp/$1.frame"
	cut -d' ' -f3 "$tmp/$1.runs" | median >"$tmp/$1.depth"
}
# Alternate the two walks so both see the same machine state.
for ((i = 0; i < RUNS; i++)); do run_once dwarf; run_once kernel-fp; done
summarize dwarf
summarize kernel-fp
d_s=$(cat "$tmp/dwarf.sample") d_f=$(cat "$tmp/dwarf.frame") d_n=$(cat "$tmp/dwarf.depth")
k_s=$(cat "$tmp/kernel-fp.sample") k_f=$(cat "$tmp/kernel-fp.frame") k_n=$(cat "$tmp/kernel-fp.depth")
awk -v ds="$d_s" -v df="$d_f" -v dn="$d_n" -v ks="$k_s" -v kf="$k_f" -v kn="$k_n" -v runs="$RUNS" 'BEGIN {
	printf "bpf sampler, %s runs each, medians (bpf_stats run time / target samples)\n", runs
	printf "  %-34s %9.0f ns/sample %7.1f ns/frame %5.1f frames\n", "ours: DWARF table walk", ds, df, dn
	printf "  %-34s %9.0f ns/sample %7.1f ns/frame %5.1f frames\n", "ref: bpf_get_stack (frame pointers)", ks, kf, kn
	printf "  ratio ours/ref: %.2fx per sample, %.2fx per frame\n", ds / ks, df / kf
	printf "  target: 32-frame DWARF walk <= 10000 ns/sample: %s (%.0f ns)\n", (ds <= 10000 ? "met" : "NOT met"), ds
}'
