#!/usr/bin/env bash
# Seed corpus for fuzz_gopclntab: the Go fixture's .gopclntab (read as 1.19
# and as 1.18) and corrupted variants.
# usage: seeds_gopclntab.sh OUTDIR   (fixtures must be built)
set -e
out=$1
mkdir -p "$out"
sec=$(mktemp)
trap 'rm -f "$sec"' EXIT
objcopy -O binary --only-section=.gopclntab "$FIXTURES/go/spin-stripped" "$sec"
{ printf '\0'; cat "$sec"; } >"$out/spin-119"
{ printf '\1'; cat "$sec"; } >"$out/spin-118"
# Cut short, and bytes flipped in the header, the function table and the tables.
head -c 4096 "$out/spin-119" >"$out/spin-cut"
python3 - "$out/spin-119" "$out" <<'PY'
import random, sys
data = open(sys.argv[1], "rb").read()
rnd = random.Random(12)
for i in range(12):
    b = bytearray(data)
    region = [(1, 80), (80, 4096), (4096, len(b))][i % 3]
    for _ in range(1 + i):
        b[rnd.randrange(*region)] = rnd.randrange(256)
    open("%s/spin-corrupt-%d" % (sys.argv[2], i), "wb").write(bytes(b))
PY
