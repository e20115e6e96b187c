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
D=$FIXTURES/bpf AFIX=$FIXTURES/agent-hooks
SPIN_ID=$(readelf -n "$AFIX/spin" | awk '/Build ID/ { print $3; exit }')
{ echo "SPIN_ID=$SPIN_ID"; cat "$TOP/tests/vm/guest_sampler.sh"; } >"$SCRATCH/guest.sh"
enough() { [[ $2 -ge 100 && $(( $1 * 100 )) -ge $(( $2 * 99 )) ]]; }

# 5.10.0-32-cloud-amd64 -> 5.10, 6.12.95+deb12-cloud-amd64 -> 6.12
short_version() { echo "$1" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/'; }

# run_kernel SUITE: boot it, run the guest script, check the results.
run_kernel() {
	local suite=$1 out k
	if ! vm_kernel "$suite" 2>"$SCRATCH/fetch.err"; then
		skip "vm_$suite" "cannot fetch the $suite kernel: $(tail -1 "$SCRATCH/fetch.err")"
		return
	fi
	k=$(short_version "$VM_KVER")
	out=$SCRATCH/$suite
	vm_boot "$VM_KERNEL" "$TOP/$BUILD/vm/payload-$VM_ARCH.cpio" "$SCRATCH/guest.sh" "$out"
	local rc=$?
	if [[ $rc == 125 ]]; then fail "vm_${k}_boot" "$VM_BOOT_WHY"; return; fi
	ok "vm_${k}_boot ($VM_KVER)"
	sed 's/^/# /' "$out/stdout"
	if ! grep -q '^unwind-sample status 0' "$out/stdout"; then
		fail "vm_${k}_unwind_sample" "$(grep -v '^  ' "$out/mixed.err" | tail -2 | tr '\n' ' ')"
	else
		grep -E 'samples, |bpf run time|walk by' "$out/mixed.err" | sed 's/^/# /'
		# The walk the probes chose: tail calls exactly where bpf_loop
		# (5.17) is missing.
		local want="walk by bpf_loop"
		[[ $(printf '%s\n' "$k" 5.17 | sort -V | head -1) != 5.17 ]] && want="walk by tail calls"
		grep -q "$want" "$out/mixed.err" && ok "vm_${k}_${want// /_}" ||
			fail "vm_${k}_${want// /_}" "$(grep 'walk by' "$out/mixed.err")"
		read main total lib handler kern kmain < <(python3 "$TOP/tests/vm/main_check.py" "$D/deep" \
			"$D/libdeepfix.so" "$out/mixed.folded")
		echo "# $k: $main of $total samples reach main, $lib through libdeepfix.so, $handler through the signal handler, $kmain of $kern taken in the kernel"
		if enough "$main" "$total" && [[ $lib -gt 0 && $handler -gt 0 ]]; then
			ok "vm_${k}_unwind_to_main"
		else
			fail "vm_${k}_unwind_to_main" "$main of $total samples reach main ($lib via the library, $handler via the handler)"
		fi
		# Samples taken in a syscall start from the registers saved on
		# kernel entry (bpf_task_pt_regs, or the kernel stack on 5.10).
		if [[ $kern == 0 ]]; then
			skip "vm_${k}_in_kernel_samples_to_main" "no sample fell in a syscall this run"
		elif [[ $(( kmain * 100 )) -ge $(( kern * 99 )) ]]; then
			ok "vm_${k}_in_kernel_samples_to_main"
		else
			fail "vm_${k}_in_kernel_samples_to_main" "$kmain of $kern in-kernel samples reach main"
		fi
	fi
	check_agent "$k" "$out"
	check_refusal "$k" "$out" nobtf "no usable BTF"
}

# check_agent K OUT: the agent fetched its tables from the server in the VM
# and wrote pprof whose samples of spin reach main (independent decoder,
# symbolize on the unstripped twin).
check_agent() {
	local k=$1 out=$2 r
	if ! grep -q '^profiler-agent status 0' "$out/stdout"; then
		fail "vm_${k}_agent" "$(tail -2 "$out/agent.err" | tr '\n' ' ')"
		return
	fi
	local fetched
	fetched=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print(s["tables_fetched"], s["execs"] + s["forks"], s["bpf_samples"], s["bpf_run_ns"] // max(s["bpf_samples"], 1))' \
		"$out/agent.json" 2>/dev/null)
	read tables hooks samples ns <<<"$fetched"
	echo "# $k agent: $tables tables fetched from debuginfod-lite, $hooks exec/fork events, $samples samples, bpf ${ns} ns/sample"
	if [[ ${tables:-0} -ge 3 && ${hooks:-0} -ge 1 ]]; then ok "vm_${k}_agent_fetches_tables"
	else fail "vm_${k}_agent_fetches_tables" "$(cat "$out/agent.json" 2>/dev/null | head -c 300)"; fi
	r=$(python3 "$TOP/tests/agent-hooks/pprof_check.py" reach --build-id "$SPIN_ID" \
		--exe "$AFIX/spin.debug" --function main --symbolize "$BIN/symbolize" \
		"$out"/agent.out/*.pb.gz 2>&1)
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["samples_in_object"] >= 50 and r["fraction"] >= 0.99))' \
		"$r" 2>/dev/null && ok "vm_${k}_agent_pprof_to_main" || fail "vm_${k}_agent_pprof_to_main" "$r"
}

# check_refusal K OUT NAME TEXT: unwind-sample and profiler-agent both
# exited non-zero with one line on stderr that says TEXT.
check_refusal() {
	local k=$1 out=$2 name=$3 text=$4 f err
	for f in sample agent; do
		err=$out/$name-$f.err
		if [[ -f $err && $(wc -l <"$err") == 1 ]] && grep -q "$text" "$err" &&
		   grep -q "^$name-$f status [1-9]" "$out/stdout"; then
			ok "vm_${k}_${name}_${f}_refused"
			sed 's/^/# /' "$err"
		else
			fail "vm_${k}_${name}_${f}_refused" "$(grep "^$name-$f status" "$out/stdout") $(head -3 "$err" 2>/dev/null | tr '\n' ' ')"
		fi
	done
}

# refuse_kernel SUITE: boot it with lockdown=confidentiality, which takes
# bpf_probe_read_kernel away from tracing programs (a feature really
# missing, not simulated): both programs must refuse, naming it.
refuse_kernel() {
	local suite=$1 out=$SCRATCH/$1-lockdown k
	vm_kernel "$suite" 2>/dev/null || return 0 # run_kernel said why
	k=$(short_version "$VM_KVER")
	vm_boot "$VM_KERNEL" "$TOP/$BUILD/vm/payload-$VM_ARCH.cpio" "$TOP/tests/vm/guest_refusal.sh" \
		"$out" lockdown=confidentiality
	if [[ $? == 125 ]]; then fail "vm_${k}_lockdown_boot" "$VM_BOOT_WHY"; return; fi
	check_refusal "$k" "$out" nofeature "lacks BPF helper bpf_probe_read_kernel"
}

for suite in ${VM_SUITES:-bullseye bookworm bookworm-backports}; do
	run_kernel "$suite"
	refuse_kernel "$suite"
done
finish
