#!/usr/bin/env bash
# The live arm64 run (make test-arm64-vm; also part of make test): Debian's
# arm64 cloud kernel booted under qemu-system-aarch64 (TCG) by the VM
# harness (tests/vm/lib.sh) from an initramfs holding a static arm64 build
# of unwind-sample (its BPF object compiled for __TARGET_ARCH_arm64 against
# the arm64 kernel's BTF) and the static corepoints fixture; the samples of
# our BPF unwinder must be complete and the main thread's reach main.
. "$TOP/tests/lib/check.sh"
scratch
for tool in qemu-system-aarch64 aarch64-linux-gnu-gcc cpio clang bpftool; do
	command -v $tool >/dev/null || { skip arm64-vm "$tool not installed"; finish; }
done
A64=${ARM64_ROOT:-$TOP/build/arm64}
XB=$TOP/build-arm64   # the cross build: bin/, fixtures/, bpf/, lib/
DEV=$A64/dev
if ! "$TOP/tests/lib/arm64_root.sh" --extract "$DEV" libbpf-dev libelf-dev libdw-dev zlib1g-dev \
	libzstd-dev liblzma-dev libbz2-dev libssl-dev libiberty-dev libc6-dev 2>"$SCRATCH/err" ||
   ! "$TOP/tests/lib/arm64_root.sh" --extract "$A64/busybox" busybox-static 2>>"$SCRATCH/err"; then
	skip arm64-vm "cannot fetch arm64 packages: $(tail -1 "$SCRATCH/err")"; finish
fi
mkdir -p "$XB/bpf" "$XB/xlib" "$XB/fixtures/bpf"
[[ -s $XB/bpf/vmlinux.h ]] || "$TOP/tests/bpf/arm64_vmlinux.sh" "$XB/bpf/vmlinux.h" 2>"$SCRATCH/err" ||
	{ skip arm64-vm "no arm64 kernel BTF: $(tail -1 "$SCRATCH/err")"; finish; }
# Static linking puts libbpf's internal hashmap_find beside common's: rename
# libbpf's copy (its own calls follow the rename).
aarch64-linux-gnu-objcopy --redefine-sym hashmap_find=libbpf_internal_hashmap_find \
	"$DEV/usr/lib/aarch64-linux-gnu/libbpf.a" "$XB/xlib/libbpf.a"
if ! make -C "$TOP" -j2 BUILD=build-arm64 BPF_TARGET_ARCH=arm64 CC=aarch64-linux-gnu-gcc \
	SANFLAGS="-isystem $DEV/usr/include -isystem $DEV/usr/include/aarch64-linux-gnu" \
	LDFLAGS="-static -pthread -L$XB/xlib -L$DEV/usr/lib/aarch64-linux-gnu" \
	build-arm64/bin/unwind-sample >"$SCRATCH/build.log" 2>&1; then
	fail arm64-vm-build "$(grep -E 'error|Error' "$SCRATCH/build.log" | head -3 | tr '\n' ' ')"; finish
fi
aarch64-linux-gnu-gcc -static -O2 -g -fomit-frame-pointer -pthread -o "$XB/fixtures/bpf/corepoints" \
	"$TOP/tests/fixtures/bpf/corepoints.c" || { fail arm64-vm-fixture "cannot build"; finish; }
ok "arm64 static unwind-sample and fixture built"
BUILD=build-arm64 VM_BUSYBOX=$A64/busybox/bin/busybox VM_TIMEOUT=${VM_TIMEOUT:-400} \
	"$TOP/tests/vm/vm-run" -a arm64 bookworm "$TOP/tests/vm/guest_arm64.sh" "$SCRATCH/out" \
	>"$SCRATCH/vm.log" 2>&1
rc=$?
if [[ $rc != 0 ]]; then
	fail arm64-vm-boot "vm-run status $rc: $(tail -3 "$SCRATCH/vm.log" | tr '\n' ' ')"; finish
fi
sed 's/^/# /' "$SCRATCH/out/stdout"
if out=$(python3 "$TOP/tests/vm/arm64_check.py" "$SCRATCH/out/sample.folded" "$XB/fixtures/bpf/corepoints"); then
	ok "arm64 VM: BPF unwinder samples reach main ($out)"
else
	fail "arm64 VM: BPF unwinder samples reach main" "$out; $(grep -v '^;' "$SCRATCH/out/sample.err" | tail -3 | tr '\n' ' ')"
fi
grep -E 'bpf run time|object ' "$SCRATCH/out/sample.err" | sed 's/^/# /'
finish
