#!/usr/bin/env python3
"""Write a small ELF64 debuginfo whose SHF_COMPRESSED sections expand to
chosen sizes (decompression bombs for tests/attack/test_memory.sh).

    elf_bomb.py OUT NAME:zlib|zstd:SIZE [NAME:...:SIZE]...

The sections hold zeros: zlib streams of them are about SIZE/1000 bytes,
zstd frames of RLE blocks 4 bytes per 128 KiB.  Prints the build-ID."""
import os
import struct
import sys
import zlib

SHF_ALLOC, SHF_COMPRESSED = 0x2, 0x800
SHT_PROGBITS, SHT_STRTAB, SHT_NOTE = 1, 3, 7
ELFCOMPRESS_ZLIB, ELFCOMPRESS_ZSTD = 1, 2


def zlib_zeros(size):
    z = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    out = []
    left = size
    while left:
        n = min(left, len(chunk))
        out.append(z.compress(chunk[:n]))
        left -= n
    out.append(z.flush())
    return b''.join(out)


def zstd_zeros(size):
    # Frame header: single segment, 8-byte content size; then RLE blocks.
    out = [struct.pack('<IB', 0xFD2FB528, 0xE0), struct.pack('<Q', size)]
    left = size
    block = 128 << 10
    while True:
        n = min(left, block)
        left -= n
        last = 1 if left == 0 else 0
        out.append(struct.pack('<I', last | (1 << 1) | (n << 3))[:3] + b'\0')
        if last:
            break
    return b''.join(out)


def main():
    out_path, specs = sys.argv[1], sys.argv[2:]
    build_id = os.urandom(20)
    names = b'\0.shstrtab\0.note.gnu.build-id\0'
    sections = []  # (name_off, type, flags, data, align)
    note = struct.pack('<III', 4, len(build_id), 3) + b'GNU\0' + build_id
    sections.append((names.index(b'.note.gnu.build-id'), SHT_NOTE, SHF_ALLOC, note, 4))
    for spec in specs:
        name, kind, size = spec.split(':')
        size = int(size)
        body = zlib_zeros(size) if kind == 'zlib' else zstd_zeros(size)
        chdr = struct.pack('<IIQQ', ELFCOMPRESS_ZLIB if kind == 'zlib' else ELFCOMPRESS_ZSTD,
                           0, size, 1)
        off = len(names)
        names += name.encode() + b'\0'
        sections.append((off, SHT_PROGBITS, SHF_COMPRESSED, chdr + body, 8))
    sections.append((names.index(b'.shstrtab'), SHT_STRTAB, 0, names, 1))
    blob = bytearray(64)
    headers = [bytes(64)]  # the null section
    for name_off, typ, flags, data, align in sections:
        while len(blob) % align:
            blob.append(0)
        headers.append(struct.pack('<IIQQQQIIQQ', name_off, typ, flags, 0, len(blob), len(data),
                                   0, 0, align, 0))
        blob += data
    while len(blob) % 8:
        blob.append(0)
    shoff = len(blob)
    ident = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack('<HHIQQQIHHHHHH', 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64,
                               len(headers), len(headers) - 1)
    blob[0:64] = ehdr
    for h in headers:
        blob += h
    with open(out_path, 'wb') as f:
        f.write(blob)
    print(build_id.hex())


if __name__ == '__main__':
    main()
