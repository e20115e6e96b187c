#!/usr/bin/env bash
# Seed corpus for fuzz_sampler: --limits strings (byte 0 even) and walks
# (byte 0 odd, byte 1 the mode, 17 registers, then stack bytes whose words
# often point back into the stack, as real frames do).
# usage: seeds_sampler.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
i=0
limits() { { printf '\0'; printf '%s' "$1"; } >"$out/limits_$((i++))"; }
limits 'frames=64,rules=1000'
limits 'objects=0,=,,frames=99999999999'
limits 'ringbuf_bytes=4097,nope'
limits 'objects=1,rules=1,pages=1,entry_blocks=1,mappings=1,ringbuf_bytes=4096,frames=1'
limits ''
python3 - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
x = 88172645463325252
STACK = 0x7ff000000000
def rnd():
    global x
    x ^= (x << 13) & 0xffffffffffffffff
    x ^= x >> 7
    x ^= (x << 17) & 0xffffffffffffffff
    return x
for k in range(200):
    words = []
    for _ in range(17 + 512):
        w = rnd()
        if w % 3 == 0:
            w = STACK + (w % 4096)
        words.append(w)
    words[7] = STACK  # RSP: the stack bytes start here
    body = struct.pack('<%dQ' % len(words), *words)
    with open('%s/walk_%d' % (out, k), 'wb') as f:
        f.write(bytes([1, k % 2]) + body)
PY
