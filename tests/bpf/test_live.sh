#!/usr/bin/env bash
# Live test of the BPF sampler: the deep fixture spins in a known 40-deep
# chain; >= 99% of samples must unwind through main (checked against nm's
# symbols), and up to _start.  The frame-pointer build walked by the
# frame-pointer path must give the same stacks as the DWARF walk.
. "$TOP/tests/lib/check.sh"
scratch
if [[ $(id -u) != 0 ]]; then skip live_bpf "needs root (CAP_BPF + CAP_PERFMON)"; finish; fi
if [[ ! -r /sys/kernel/btf/vmlinux ]]; then skip live_bpf "no kernel BTF"; finish; fi
for t in nm readelf python3; do
	command -v $t >/dev/null || { skip live_bpf "$t not installed"; finish; }
done
DEEP=$FIXTURES/bpf/deep DEEPFP=$FIXTURES/bpf/deep-fp
CHECK=$TOP/tests/bpf/stacks_check.py

# sample BINARY MODE OUT [ARGS]: run BINARY ARGS (default: chain), sample
# it, kill it.
sample() {
	"$1" ${4:-chain} & local pid=$!
	sleep 0.3
	timeout -k 5 60 "$BIN/unwind-sample" --pid $pid --duration 1.5 --frequency 499 --mode "$2" \
		>"$3" 2>"$3.err"
	local rc=$?
	kill $pid; wait $pid 2>/dev/null
	return $rc
}

# pct GOOD TOTAL -> 1 when GOOD >= 99% of TOTAL
enough() { [[ $2 -gt 100 && $(( $1 * 100 )) -ge $(( $2 * 99 )) ]]; }

if ! sample "$DEEP" dwarf "$SCRATCH/dwarf.txt"; then
	fail live_dwarf_unwind "unwind-sample failed: $(tail -2 "$SCRATCH/dwarf.txt.err")"
	finish
fi
read good total rooted < <(python3 "$CHECK" "$DEEP" "$SCRATCH/dwarf.txt")
if enough $good $total; then ok live_dwarf_unwind_to_main
else fail live_dwarf_unwind_to_main "$good of $total samples unwound main..chain_39..chain_spin"; fi
if enough $rooted $total; then ok live_dwarf_unwind_to_start
else fail live_dwarf_unwind_to_start "$rooted of $total samples reached _start"; fi
grep -q "^$(readelf -n "$DEEP" | awk '/Build ID/{print $3}')+0x" "$SCRATCH/dwarf.txt" &&
	ok live_folded_format || fail live_folded_format "frames are not <build-id>+0x<addr>"

# Frame pointers: the FP build, walked by FP and by DWARF, same stacks.
sample "$DEEPFP" fp "$SCRATCH/fp.txt" || fail live_fp_unwind "unwind-sample --mode fp failed"
sample "$DEEPFP" dwarf "$SCRATCH/fpdwarf.txt" || fail live_fp_unwind "unwind-sample failed"
read good total rooted < <(python3 "$CHECK" "$DEEPFP" "$SCRATCH/fp.txt" --callers-out "$SCRATCH/fp.callers")
if enough $good $total; then ok live_fp_unwind_to_main
else fail live_fp_unwind_to_main "$good of $total FP samples unwound main..chain_spin"; fi
python3 "$CHECK" "$DEEPFP" "$SCRATCH/fpdwarf.txt" --callers-out "$SCRATCH/dw.callers" >/dev/null
# Same stacks by both paths: caller chains (raw return addresses, main to the
# leaf's caller) of >= 99% of each run's samples occur in the other run.
read fp_in_dw dw_in_fp < <(python3 "$CHECK" --compare "$SCRATCH/fp.callers" "$SCRATCH/dw.callers")
if [[ $fp_in_dw -ge 99 && $dw_in_fp -ge 99 ]]; then
	ok live_fp_same_stacks_as_dwarf
else
	fail live_fp_same_stacks_as_dwarf "FP vs DWARF caller chains: $fp_in_dw% / $dw_in_fp% shared"
fi
# JIT-like code (anonymous, frame pointer, no CFI) between main and the leaf:
# DWARF walk -> frame-pointer step through the anonymous code -> DWARF again.
if sample "$DEEP" dwarf "$SCRATCH/jit.txt" jit; then
	read good total rooted < <(python3 "$CHECK" "$DEEP" "$SCRATCH/jit.txt" --jit)
	if enough $good $total && enough $rooted $total; then ok live_jit_fp_fallback
	else fail live_jit_fp_fallback "$good of $total samples main;[anon];jit_spin ($rooted to _start)"; fi
else
	fail live_jit_fp_fallback "unwind-sample failed: $(tail -1 "$SCRATCH/jit.txt.err")"
fi
grep -q "by frame pointer" "$SCRATCH/fp.txt.err" && ! grep -q " 0 by frame pointer" "$SCRATCH/fp.txt.err" &&
	ok live_fp_path_used || fail live_fp_path_used "no frame-pointer steps counted"
finish
