#!/usr/bin/env bash
# Seed corpus for fuzz_perfmap: first byte 0 = perf map, 1 = jitdump.
# usage: seeds_perfmap.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
{ printf '\0'; printf '1000 100 old_fn\n0x1040 20 new fn\nzz bad line\n2000 10 tail'; } > "$out/map1"
{ printf '\0'; printf '7f00 ffffffffffffffff huge\n0 0 zero\n10 10 a\n15 2 b\n12 30 c\n'; } > "$out/map2"
python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$out/map1" "$out" 8
build=$(dirname "$FIXTURES")
if [[ -x $build/fixtures/symbolizer/jitwriter ]]; then
	(cd "$out" && "$build/fixtures/symbolizer/jitwriter" > /dev/null)
	for f in "$out"/jit-*.dump; do
		{ printf '\1'; cat "$f"; } > "$f.seed"
		python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$f" "$out" 16 1
		rm "$f"
	done
fi
