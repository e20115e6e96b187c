#!/usr/bin/env bash
# The BPF programs (sampler with the aarch64 walker, the agent's lifecycle
# hooks) compile for __TARGET_ARCH_arm64 against Debian's arm64 kernel BTF,
# and bpftool makes their skeletons.  Loading them needs an arm64 kernel
# (make test-arm64-vm).
. "$TOP/tests/lib/check.sh"
scratch
command -v bpftool >/dev/null && command -v clang >/dev/null || { skip arm64-bpf "clang or bpftool missing"; finish; }
if ! "$TOP/tests/bpf/arm64_vmlinux.sh" "$SCRATCH/vmlinux.h" 2>"$SCRATCH/err"; then
	skip arm64-bpf "no arm64 kernel BTF: $(tail -1 "$SCRATCH/err")"; finish
fi
for src in bpf/sampler.bpf.c agent-hooks/lifecycle.bpf.c; do
	name=$(basename "$src" .bpf.c)
	if out=$(clang -g -O2 -target bpf -D__TARGET_ARCH_arm64 -I"$SCRATCH" -I"$TOP" -Wall -Werror \
			-Wno-unused-function -c "$TOP/$src" -o "$SCRATCH/$name.bpf.o" 2>&1) &&
	   bpftool gen skeleton "$SCRATCH/$name.bpf.o" name "${name}_skel" >"$SCRATCH/$name.skel.h"; then
		ok "arm64 BPF compiles: $src"
	else
		fail "arm64 BPF compiles: $src" "$(echo "$out" | head -3 | tr '\n' ' ')"
	fi
done
# The arm64 object carries the aarch64 walker (the sigreturn code it looks
# for), the x86-64 one does not.
# mov x8, #139; svc #0 as one 64-bit immediate: 0xd4000001d2801168.
if llvm-objdump -d "$SCRATCH/sampler.bpf.o" | grep -q -- "-3170534129842253464 ll"; then
	ok "arm64 sampler has the aarch64 walker"
else
	fail "arm64 sampler has the aarch64 walker" "no sigreturn pattern in the code"
fi
finish
