#!/usr/bin/env bash
# Seed corpus for fuzz_minidebuginfo: the .gnu_debugdata of the MiniDebugInfo
# fixture, its corruptions, and small xz streams of odd content.
# usage: seeds_minidebuginfo.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
mini=$FIXTURES/symbolizer/cc-O2-minidebuginfo
if [[ -f $mini ]]; then
	objcopy --dump-section .gnu_debugdata="$out/section.xz" "$mini" "$out/.tmp.elf"
	rm -f "$out/.tmp.elf"
	python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$out/section.xz" "$out" 12
fi
echo "not an elf" | xz -T1 >"$out/text.xz"
printf '\177ELF\2\1\1' | xz -T1 >"$out/elfhead.xz"
printf 'garbage' >"$out/garbage"
