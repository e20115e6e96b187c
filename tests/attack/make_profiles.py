#!/usr/bin/env python3
"""Write COUNT large unsymbolized pprof profiles (gzipped) into DIR for
tests/attack/test_memory.sh: SAMPLES samples each over one set of stacks
(30000 locations of one mapping), values and host label varying, so every
file differs and a merge shares their stacks.

    make_profiles.py DIR COUNT SAMPLES"""
import gzip, random, sys
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7f; v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v: return bytes(out)
def field(n, payload): return varint(n << 3 | 2) + varint(len(payload)) + payload
def vfield(n, v): return varint(n << 3) + varint(v)
def packed(n, vals): return field(n, b''.join(varint(v) for v in vals))
out_dir, count, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
naddr = 30000
strings = [b'', b'samples', b'count', b'cpu', b'nanoseconds', b'/opt/app/big',
           b'0123456789abcdef0123456789abcdef01234567', b'host', b'h0', b'h1']
stacks = [[random.randint(1, naddr) for _ in range(random.randint(8, 30))] for _ in range(samples)]
body = bytearray()
body += field(1, vfield(1, 1) + vfield(2, 2)) + field(1, vfield(1, 3) + vfield(2, 4))
body += field(3, vfield(1, 1) + vfield(3, (1 << 64) - 1) + vfield(5, 5) + vfield(6, 6))
for i in range(1, naddr + 1):
    body += field(4, vfield(1, i) + vfield(2, 1) + vfield(3, 0x1000 + i * 4))
for k in range(count):
    rnd = random.Random(k)
    prof = bytearray(body)
    for st in stacks:
        v = rnd.randint(1, 50)
        prof += field(2, packed(1, st) + packed(2, [v, v * 10000000]) + field(3, vfield(1, 7) + vfield(2, 8 + k % 2)))
    for s in strings: prof += field(6, s)
    prof += vfield(9, (1700000000 + k + 1) * 10**9) + vfield(10, 10**9)
    open('%s/big%d.pb.gz' % (out_dir, k + 1), 'wb').write(gzip.compress(bytes(prof), 6))
