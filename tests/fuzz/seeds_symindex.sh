#!/usr/bin/env bash
# Seed corpus for fuzz_symindex: serialized indexes of the fixtures and
# corrupted variants.  usage: seeds_symindex.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
bin=$(dirname "$FIXTURES")/bin
for f in c-O2-dw4 c-clang-O2-dw5 c-split; do
	"$bin/symbolize" index "$FIXTURES/symbolizer/$f" -o "$out/$f.symz"
	python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$out/$f.symz" "$out" 16
done
