#!/usr/bin/env bash
# The kernel matrix: boots Debian's cloud kernels (5.10, 6.1, 6.12) in qemu
# (tests/vm/lib.sh) and runs the sampler and the agent in each
# (tests/vm/guest_sampler.sh); the host checks what comes back.  The host's
# own kernel is covered by tests/bpf and tests/agent-hooks.
#
# VM_SUITES overrides the list (e.g. VM_SUITES=bookworm).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/vm/lib.sh"
scratch
vm_setup amd64
why=$(vm_missing)
if [[ -n $why ]]; then skip vm_matrix "$why"; finish; fi
for t in nm readelf python3; do
	command -v $t >/dev/null || { skip vm_matrix "$t not installed"; finish; }
done
if ! vm_payload "$TOP/$BUILD/vm/payload-$VM_ARCH.cpio"; then
	fail vm_matrix "cannot build the initramfs"; finish
fi
D=$FIXTURES/bpf
enough() { [[ $2 -ge 100 && $(( $1 * 100 )) -ge $(( $2 * 99 )) ]]; }

# run_kernel SUITE: boot it, run the guest script, check the results.
run_kernel() {
	local suite=$1 out k
	if ! vm_kernel "$suite" 2>"$SCRATCH/fetch.err"; then
		skip "vm_$suite" "cannot fetch the $suite kernel: $(tail -1 "$SCRATCH/fetch.err")"
		return
	fi
	k=$VM_KVER
	k=${k%%-*}; k=${k%.*}  # 5.10.0-32-cloud-amd64 -> 5.10
	[[ $k == *.*.* ]] && k=${k%.*}
	out=$SCRATCH/$suite
	vm_boot "$VM_KERNEL" "$TOP/$BUILD/vm/payload-$VM_ARCH.cpio" "$TOP/tests/vm/guest_sampler.sh" "$out"
	local rc=$?
	if [[ $rc == 125 ]]; then fail "vm_${k}_boot" "$VM_BOOT_WHY"; return; fi
	ok "vm_${k}_boot ($VM_KVER)"
	sed 's/^/# /' "$out/stdout"
	if ! grep -q '^unwind-sample status 0' "$out/stdout"; then
		fail "vm_${k}_unwind_sample" "$(grep -v '^  ' "$out/mixed.err" | tail -2 | tr '\n' ' ')"
	else
		grep -E 'samples, |bpf run time' "$out/mixed.err" | sed 's/^/# /'
		read main total lib handler < <(python3 "$TOP/tests/vm/main_check.py" "$D/deep" \
			"$D/libdeepfix.so" "$out/mixed.folded")
		echo "# $k: $main of $total samples reach main, $lib through libdeepfix.so, $handler through the signal handler"
		if enough "$main" "$total" && [[ $lib -gt 0 && $handler -gt 0 ]]; then
			ok "vm_${k}_unwind_to_main"
		else
			fail "vm_${k}_unwind_to_main" "$main of $total samples reach main ($lib via the library, $handler via the handler)"
		fi
	fi
}

for suite in ${VM_SUITES:-bullseye bookworm bookworm-backports}; do
	run_kernel "$suite"
done
finish
