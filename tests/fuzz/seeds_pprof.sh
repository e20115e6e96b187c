#!/usr/bin/env bash
# Seed corpus for fuzz_pprof: plain and gzipped profiles (unsymbolized and
# symbolized by us, with labels) and corrupted variants of the plain ones.
# usage: seeds_pprof.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
build=$(dirname "$FIXTURES")
obj=$FIXTURES/symbolizer/c-O2-dw4
id=$(readelf -n "$obj" | awk '/Build ID/ {print $3}')
printf '1290 129f = 4\n14b5 129f 1298 151b = 1\n13e5 1294 1281 1280 = 4\n1300\n' |
	"$build/tests/debuginfod-lite/test_profile_tool" make "$out/raw.pb.gz" --mapping "$id" "$obj"
XDG_CACHE_HOME=$out/.cache "$build/bin/symbolize" pprof "$out/raw.pb.gz" -o "$out/sym.pb.gz" 2>/dev/null
rm -rf "$out/.cache"
zcat "$out/raw.pb.gz" > "$out/raw.pb"
zcat "$out/sym.pb.gz" > "$out/sym.pb"
for f in raw.pb sym.pb; do
	python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$out/$f" "$out" 24
done
