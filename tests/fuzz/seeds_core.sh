#!/usr/bin/env bash
# Seed corpus for fuzz_core: small synthetic cores of both architectures
# (threads whose registers point into a dumped stack of random words, a
# vDSO-less auxv, an NT_FILE), and corrupted variants of them.
# usage: seeds_core.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
python3 - "$out" <<'PY'
import os, random, struct, sys
out = sys.argv[1]
rng = random.Random(11)

def note(name, ntype, desc):
    n = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)

def core(machine, nthreads, stack_words=512, nt_file=True):
    stack_base = 0x7ffd0000 if machine == 62 else 0x5500800000
    stack = b"".join(struct.pack("<Q", rng.choice([0, stack_base + rng.randrange(0, 8 * stack_words),
                                                   0x401000 + rng.randrange(0, 0x2000), rng.getrandbits(64)]))
                     for _ in range(stack_words))
    notes = b""
    for t in range(nthreads):
        nregs = 27 if machine == 62 else 34
        regs = [rng.choice([stack_base + rng.randrange(0, 8 * stack_words), 0x401000 + rng.randrange(0, 0x2000),
                            rng.getrandbits(64)]) for _ in range(nregs)]
        pr = bytearray(112 + 8 * nregs + 8)
        struct.pack_into("<I", pr, 32, 1000 + t)
        struct.pack_into("<%dQ" % nregs, pr, 112, *regs)
        notes += note(b"CORE", 1, bytes(pr))
    notes += note(b"CORE", 6, struct.pack("<8Q", 3, 0x400040, 9, 0x401000, 31, stack_base + 16, 0, 0))
    if nt_file:
        names = b"/nonexistent/prog\0"
        notes += note(b"CORE", 0x46494c45, struct.pack("<5Q", 1, 4096, 0x400000, 0x403000, 0) + names)
    phoff, phnum = 64, 2
    data_off = phoff + 56 * phnum
    stack_off = data_off + len(notes)
    eh = bytearray(64)
    eh[0:4] = b"\x7fELF"
    eh[4], eh[5], eh[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", eh, 16, 4, machine, 1, 0, phoff, 0, 0, 64, 56, phnum, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, data_off, 0, 0, len(notes), 0, 4)
    ph += struct.pack("<IIQQQQQQ", 1, 6, stack_off, stack_base, 0, len(stack), len(stack), 4096)
    return bytes(eh) + ph + notes + stack

seeds = {"x86": core(62, 3), "a64": core(183, 3), "a64-nofile": core(183, 2, nt_file=False)}
for name, d in seeds.items():
    open(os.path.join(out, name + ".core"), "wb").write(d)
    for i in range(6):
        v = bytearray(d)
        for _ in range(rng.randrange(1, 8)):
            v[rng.randrange(0, min(len(v), 64 + 112 + 600))] = rng.getrandbits(8)
        open(os.path.join(out, "%s-flip%d.core" % (name, i)), "wb").write(bytes(v))
    open(os.path.join(out, name + "-cut.core"), "wb").write(d[: len(d) // 3])
PY
