#!/usr/bin/env bash
# Seed corpus for fuzz_unwind: small real objects and corrupted variants.
# usage: seeds_unwind.sh OUTDIR   (fixtures must be built)
set -e
out=$1
mkdir -p "$out"
cp "$FIXTURES"/unwind/odd-cfi "$FIXTURES"/unwind/deep-O2 "$FIXTURES"/unwind/debug-frame-only "$out"/
python3 "$TOP/tests/unwind-compiler/corrupt.py" "$FIXTURES/unwind/odd-cfi" "$out" 20 >/dev/null
# A stripped Go binary: rows from .gopclntab, no CFI at all.
cp "$FIXTURES/go/spin-stripped" "$out/go-spin-stripped"
# aarch64 CFI: the cross-assembled fixture of odd shapes and corrupted variants.
if command -v aarch64-linux-gnu-gcc >/dev/null; then
	aarch64-linux-gnu-gcc -o "$out/a64_cfi" "$TOP/tests/fixtures/arm64/a64_cfi.S"
	mkdir -p "$out/a64"
	python3 "$TOP/tests/unwind-compiler/corrupt.py" "$out/a64_cfi" "$out/a64" 20 >/dev/null
	for f in "$out"/a64/*; do mv "$f" "$out/a64-$(basename "$f")"; done
	rmdir "$out/a64"
fi
