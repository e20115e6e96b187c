#!/usr/bin/env python3
"""Write corrupted variants of a file: truncations and byte flips.

usage: corrupt_bytes.py FILE OUTDIR COUNT [PREFIX_BYTE]

For ELF files the flips land inside .debug_* and .symtab sections (what the
index builder trusts least); otherwise anywhere.  A fixed seed keeps runs
repeatable.  PREFIX_BYTE (0-255) is prepended to every variant (the perf-map
fuzz target's parser selector)."""
import os
import random
import struct
import sys


def elf_ranges(data):
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    if shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
        return []
    hdrs = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = hdrs[shstrndx][4]
    out = []
    for name, typ, flags, addr, off, size in hdrs:
        end = data.find(b"\0", stroff + name)
        n = data[stroff + name:end].decode(errors="replace")
        if (n.startswith(".debug_") or n in (".symtab", ".strtab", ".gnu_debugaltlink")) \
                and typ != 8 and off + size <= len(data) and size:
            out.append((n, off, size))
    return out


def main():
    src, outdir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    prefix = bytes([int(sys.argv[4])]) if len(sys.argv) > 4 else b""
    data = open(src, "rb").read()
    base = os.path.basename(src)
    os.makedirs(outdir, exist_ok=True)
    rnd = random.Random(base)
    ranges = elf_ranges(data) or [("all", 0, len(data))]
    for i in range(count):
        d = bytearray(data)
        if i % 4 == 0:
            d = d[:rnd.randrange(1, max(2, len(d)))]
            what = "trunc"
        else:
            name, off, size = rnd.choice(ranges)
            for _ in range(rnd.randint(1, 8)):
                p = off + rnd.randrange(size)
                d[p] = rnd.choice([0, 0xff, 0x7f, 0x80, rnd.randrange(256)])
            what = name.strip(".")
        open(os.path.join(outdir, "%s-%s-%d" % (base, what, i)), "wb").write(prefix + bytes(d))


main()
