#!/usr/bin/env python3
"""Write corrupted variants of an ELF file, aimed at the CFI parser.

usage: corrupt.py ELF OUTDIR [COUNT]

Each variant is named after what was done to it.  Targeted ones hit the
structures the parser trusts least (entry lengths, CIE pointers, versions,
augmentation strings, pointer encodings, the CFA program: deep
remember_state, restore_state without remember, huge advances, unknown
opcodes, runaway expressions, section headers pointing outside the file);
random ones flip bytes inside .eh_frame with a fixed seed, so runs repeat.
"""
import os
import random
import struct
import sys


def sections(data):
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    out = {}
    hdrs = []
    for i in range(shnum):
        off = shoff + i * shentsize
        name, typ, flags, addr, offset, size = struct.unpack_from("<IIQQQQ", data, off)
        hdrs.append((off, name, typ, offset, size))
    stroff = hdrs[shstrndx][3]
    for off, name, typ, offset, size in hdrs:
        end = data.index(b"\0", stroff + name)
        out[data[stroff + name:end].decode()] = (off, offset, size)
    return out


def entries(data, off, size):
    """(entry offset, length, is_cie, instructions offset) of .eh_frame."""
    pos, out = off, []
    while pos + 8 <= off + size:
        length, = struct.unpack_from("<I", data, pos)
        if length == 0 or length == 0xffffffff:
            break
        cid, = struct.unpack_from("<I", data, pos + 4)
        out.append((pos, length, cid == 0))
        pos += 4 + length
    return out


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    data = bytearray(open(src, "rb").read())
    os.makedirs(outdir, exist_ok=True)
    secs = sections(data)
    _, eh_off, eh_size = secs[".eh_frame"]
    ents = entries(data, eh_off, eh_size)
    cie = next(e for e in ents if e[2])
    fdes = [e for e in ents if not e[2]]
    big = max(fdes, key=lambda e: e[1])
    variants = {}

    def variant(name, mutate):
        d = bytearray(data)
        mutate(d)
        variants[name] = d

    variant("cie-length-huge", lambda d: struct.pack_into("<I", d, cie[0], 0xfffffff0))
    variant("cie-length-64bit-huge", lambda d: (struct.pack_into("<I", d, cie[0], 0xffffffff),
                                                 struct.pack_into("<I", d, cie[0] + 4, 0xfffffff)))
    variant("fde-length-past-end", lambda d: struct.pack_into("<I", d, fdes[-1][0], eh_size * 2))
    variant("fde-cie-pointer-garbage", lambda d: struct.pack_into("<I", d, fdes[0][0] + 4, 0x7ffffff0))
    variant("fde-cie-pointer-to-fde", lambda d: struct.pack_into("<I", d, fdes[1][0] + 4,
                                                                  fdes[1][0] + 4 - fdes[0][0]))
    variant("cie-version-9", lambda d: d.__setitem__(cie[0] + 8, 9))
    variant("cie-augmentation-unterminated",
            lambda d: d.__setitem__(slice(cie[0] + 9, cie[0] + 4 + cie[1]), b"z" * (cie[1] - 5)))
    variant("cie-code-align-0", lambda d: d.__setitem__(cie[0] + 9 + len(b"zR\0"), 0))
    # FDE program of the largest FDE: fill with one opcode.
    prog = big[0] + 4 + 4 + 8 + 1  # length, id, pc_begin+range (sdata4 x2), aug len
    plen = big[0] + 4 + big[1] - prog
    for name, op in (("remember-state-deep", b"\x0a"), ("restore-state-unbalanced", b"\x0b"),
                     ("unknown-opcode", b"\x3f"), ("advance-loc4-huge", b"\x04\xff\xff\xff\x7f"),
                     ("def-cfa-expression-runaway", b"\x0f\xff\xff\xff\xff\x0f"),
                     ("offset-extended-uleb-overflow", b"\x05\x06" + b"\xff" * 12),
                     ("set-loc-backwards", b"\x01" + b"\x00" * 8)):
        variant(name, lambda d, op=op: d.__setitem__(slice(prog, prog + plen), (op * plen)[:plen]))
    sh_off = secs[".eh_frame"][0]
    variant("eh-frame-section-outside-file", lambda d: struct.pack_into("<Q", d, sh_off + 24, len(d) + 4096))
    variant("eh-frame-size-huge", lambda d: struct.pack_into("<Q", d, sh_off + 32, 1 << 40))
    variant("section-headers-outside-file", lambda d: struct.pack_into("<Q", d, 0x28, len(d) * 4))
    variant("not-elf", lambda d: d.__setitem__(slice(0, 4), b"\x7fELG"))
    variant("big-endian", lambda d: d.__setitem__(5, 2))
    variant("machine-aarch64", lambda d: struct.pack_into("<H", d, 18, 183))
    for cut in (16, 64, 1024, eh_off + eh_size // 2, len(data) // 2, len(data) - 1):
        variants["truncated-%d" % cut] = data[:cut]
    variants["empty"] = b""
    rng = random.Random(1234)
    for i in range(count):
        d = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            d[eh_off + rng.randrange(eh_size)] = rng.randrange(256)
        variants["random-%03d" % i] = d
    for name, d in variants.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(d)
    print(len(variants))


if __name__ == "__main__":
    main()
