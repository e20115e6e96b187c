#!/usr/bin/env bash
# BPF sampler cost from the kernel's BPF run-time statistics
# (bpf_enable_stats), on the same 33-frame stacks, in the same run:
#   ours:      table-driven DWARF walk (unwind-sample --mode dwarf), with the
#              walk the kernel's features choose (bpf_loop here), and the
#              tail-call chain that kernels without bpf_loop get
#              (SAMPLER_COMPAT=1)
#   reference: the kernel's frame-pointer walk, bpf_get_stack(BPF_F_USER_STACK)
# The fixture is the frame-pointer build so both walks see the same frames.
# Target (DESIGN.md §6): a 32-frame DWARF walk <= 10 us per sample.
# Then the same on each kernel of the VM matrix (tests/vm): emulated CPUs
# (TCG), so compare kernels with each other, not with the host.
# VM_SUITES= (empty) skips the VMs.
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}" "${BUILD:=build}"
BIN=$TOP/$BUILD/bin FIX=$TOP/$BUILD/fixtures/bpf FIXTURES=$TOP/$BUILD/fixtures
if [[ $(id -u) != 0 || ! -r /sys/kernel/btf/vmlinux ]]; then
	echo "bench_bpf: skipped (needs root and kernel BTF)"; exit 0
fi
RUNS=${RUNS:-5} SECONDS_PER_RUN=${SECONDS_PER_RUN:-2} HZ=${HZ:-999}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"; [[ -n ${pid:-} ]] && kill $pid 2>/dev/null' EXIT

# 28 chain frames + chain_spin + main + 2 libc + _start = 33 frames
"$FIX/deep-fp" chain 28 & pid=$!
sleep 0.3

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
run_once() { # NAME MODE [ENV]: one run, appended to $tmp/NAME.runs
	env ${3:-SAMPLER_X=} "$BIN/unwind-sample" --pid $pid --duration "$SECONDS_PER_RUN" \
		--frequency "$HZ" --mode "$2" --no-kernel --stats >/dev/null 2>"$tmp/err" ||
		{ cat "$tmp/err"; exit 1; }
	sed -n 's/.*: \([0-9.]*\) ns\/sample, \([0-9.]*\) ns\/frame, \([0-9.]*\) frames\/sample/\1 \2 \3/p' \
		"$tmp/err" >>"$tmp/$1.runs"
}
summarize() { # NAME -> $tmp/NAME.sample, .frame, .depth (medians)
	cut -d' ' -f1 "$tmp/$1.runs" | median >"$tmp/$1.sample"
	cut -d' ' -f2 "$tmp/$1.runs" | median >"$tmp/$1.frame"
	cut -d' ' -f3 "$tmp/$1.runs" | median >"$tmp/$1.depth"
}
# Alternate the walks so all see the same machine state.
for ((i = 0; i < RUNS; i++)); do
	run_once dwarf dwarf
	run_once chain dwarf SAMPLER_COMPAT=1
	run_once kernel-fp kernel-fp
done
kill $pid; pid=
for n in dwarf chain kernel-fp; do summarize $n; done
d_s=$(cat "$tmp/dwarf.sample") d_f=$(cat "$tmp/dwarf.frame") d_n=$(cat "$tmp/dwarf.depth")
c_s=$(cat "$tmp/chain.sample") c_f=$(cat "$tmp/chain.frame") c_n=$(cat "$tmp/chain.depth")
k_s=$(cat "$tmp/kernel-fp.sample") k_f=$(cat "$tmp/kernel-fp.frame") k_n=$(cat "$tmp/kernel-fp.depth")
awk -v ds="$d_s" -v df="$d_f" -v dn="$d_n" -v cs="$c_s" -v cf="$c_f" -v cn="$c_n" \
    -v ks="$k_s" -v kf="$k_f" -v kn="$k_n" -v runs="$RUNS" -v kernel="$(uname -r)" 'BEGIN {
	printf "bpf sampler on this host (%s), %s runs each, medians (bpf_stats run time / target samples)\n", kernel, runs
	printf "  %-38s %9.0f ns/sample %7.1f ns/frame %5.1f frames\n", "ours: DWARF table walk (bpf_loop)", ds, df, dn
	printf "  %-38s %9.0f ns/sample %7.1f ns/frame %5.1f frames\n", "ours: same, tail-call chain (< 5.17)", cs, cf, cn
	printf "  %-38s %9.0f ns/sample %7.1f ns/frame %5.1f frames\n", "ref: bpf_get_stack (frame pointers)", ks, kf, kn
	printf "  ratio ours/ref: %.2fx per sample, %.2fx per frame; tail calls/bpf_loop: %.2fx\n", ds / ks, df / kf, cs / ds
	printf "  target: 32-frame DWARF walk <= 10000 ns/sample: %s (%.0f ns)\n", (ds <= 10000 ? "met" : "NOT met"), ds
}'

# --- per kernel, in VMs ---
. "$TOP/tests/vm/lib.sh"
vm_setup amd64
why=$(vm_missing)
if [[ -n $why ]]; then echo "bench_bpf: VM kernels skipped ($why)"; exit 0; fi
[[ -z ${VM_SUITES-x} ]] && exit 0
vm_payload "$TOP/$BUILD/vm/payload-$VM_ARCH.cpio" || { echo "bench_bpf: no initramfs"; exit 1; }
{ echo "RUNS=3"; cat "$TOP/tests/vm/guest_bench.sh"; } >"$tmp/guest.sh"
echo "bpf sampler per kernel, in qemu without KVM (emulated CPU: compare kernels, not with the host), 3 runs each, medians"
for suite in ${VM_SUITES:-bullseye bookworm bookworm-backports}; do
	if ! vm_kernel "$suite" 2>/dev/null; then echo "  $suite: cannot fetch the kernel"; continue; fi
	rm -rf "$tmp/vm"
	if ! vm_boot "$VM_KERNEL" "$TOP/$BUILD/vm/payload-$VM_ARCH.cpio" "$tmp/guest.sh" "$tmp/vm"; then
		echo "  $VM_KVER: ${VM_BOOT_WHY:-failed: $(tail -1 "$tmp/vm/stderr" 2>/dev/null)}"; continue
	fi
	walk=bpf_loop
	grep -q '^walk tail-calls' "$tmp/vm/stdout" && walk="tail calls"
	d=$(awk '$1 == "dwarf" { print $2 }' "$tmp/vm/stdout" | median)
	k=$(awk '$1 == "kernel-fp" { print $2 }' "$tmp/vm/stdout" | median)
	n=$(awk '$1 == "dwarf" { print $4 }' "$tmp/vm/stdout" | median)
	awk -v v="$VM_KVER" -v w="$walk" -v d="$d" -v k="$k" -v n="$n" 'BEGIN {
		printf "  %-28s ours (%s) %9.0f ns/sample, %4.1f frames; ref %9.0f ns/sample; ratio %.2fx\n", v, w, d, n, k, (k > 0 ? d / k : 0)
	}'
done
