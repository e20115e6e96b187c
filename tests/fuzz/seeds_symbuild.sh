#!/usr/bin/env bash
# Seed corpus for fuzz_symbuild: small real objects with DWARF 4/5, split
# DWARF skeleton, zstd sections, a dwz'd file, and corrupted variants.
# usage: seeds_symbuild.sh OUTDIR   (fixtures must be built)
set -e
out=$1
mkdir -p "$out"
fx=$FIXTURES/symbolizer
for f in c-O2-dw4 c-clang-O2-dw5 c-split c-O3-dw5.zstd c-stripped.debug dwz1; do
	cp "$fx/$f" "$out/"
	python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$fx/$f" "$out" 12
done
# A stripped Go binary: .gopclntab is all there is to index.
cp "$FIXTURES/go/spin-stripped" "$out/go-spin-stripped"
