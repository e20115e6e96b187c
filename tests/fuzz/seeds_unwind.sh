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
