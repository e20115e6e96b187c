#!/usr/bin/env python3
"""Compare `unwind-sample --core` with `eu-stack --core` (libdwfl), thread by
thread, frame for frame.

One class is not comparable: where a PC has no CFI, libdwfl's aarch64
fallback (backends/aarch64_unwind.c) takes LR as the caller's PC and the
frame record at X29 as the next one, with SP = X29 + 16.  After a sigreturn
trampoline (qemu-user's has no CFI; libdwfl has no aarch64 signal frames)
that returns to the trampoline a second time and loses the interrupted
frame; after a PLT stub it gives the caller a wrong SP.  Both show as the
same frame twice in a row in eu-stack's listing.  Such threads are counted
apart and left out of the percentage; docs/bpf-unwinder.md explains them.

A second class: where the listings part, eu-stack's last frame is an address
in no mapped object (a return address read from the wrong slot, after which
libdwfl stops), while ours lies in an object and goes on.  A return address
outside all code cannot be right, so these are counted apart too.
"""
import collections
import re
import struct
import subprocess
import sys


def min_vaddr(path, cache={}):
    if path not in cache:
        v = 0
        try:
            with open(path, "rb") as f:
                h = f.read(64)
                phoff, = struct.unpack_from("<Q", h, 32)
                phentsize, phnum = struct.unpack_from("<HH", h, 54)
                f.seek(phoff)
                ph = f.read(phentsize * phnum)
            loads = [struct.unpack_from("<IIQQ", ph, i * phentsize) for i in range(phnum)]
            vs = [p[3] for p in loads if p[0] == 1]
            v = min(vs) & ~0xfff if vs else 0
        except (OSError, struct.error):
            pass
        cache[path] = v
    return cache[path]


def eu_stack(core, exe):
    args = ["eu-stack", "--core=" + core, "-n", "256"]
    if exe != "-":
        args += ["-e", exe]
    mods = {}
    ranges = []
    out = subprocess.run(args + ["-l"], capture_output=True, text=True).stdout.splitlines()
    for i, line in enumerate(out):
        m = re.match(r"0x([0-9a-f]+)-0x([0-9a-f]+) ", line)
        if m and i + 2 < len(out):
            bid = re.search(r"\[([0-9a-f]+)\]", out[i + 1])
            path = out[i + 2].strip() if out[i + 2].startswith("  /") else None
            if bid and path:
                start = int(m.group(1), 16)
                mods[(bid.group(1), start)] = path
                ranges.append((start, int(m.group(2), 16), bid.group(1), start - min_vaddr(path)))
    threads, tids = [], []
    frame_pc = None
    for line in subprocess.run(args + ["-b"], capture_output=True, text=True).stdout.splitlines():
        m = re.match(r"TID (\d+):", line)
        if m:
            threads.append([])
            tids.append(int(m.group(1)))
            continue
        m = re.match(r"#\d+\s+0x([0-9a-f]+)", line)
        if m and threads:
            frame_pc = int(m.group(1), 16)
            threads[-1].append(("", frame_pc))
            continue
        m = re.match(r"\s+\[([0-9a-f]+)\]@0x([0-9a-f]+)\+0x[0-9a-f]+", line)
        if m and threads and frame_pc is not None:
            bid, start = m.group(1), int(m.group(2), 16)
            path = mods.get((bid, start))
            bias = start - min_vaddr(path) if path else start
            threads[-1][-1] = (bid, frame_pc - bias)
    return threads, tids, ranges


def fallback_repeat(ours, theirs):
    """Where the listings part (and both go on), eu-stack lists a frame twice
    in a row (see the module's comment)."""
    k = next((j for j in range(min(len(ours), len(theirs))) if ours[j] != theirs[j]), None)
    if k is None:
        return False
    return (k > 0 and theirs[k] == theirs[k - 1]) or (k + 1 < len(theirs) and theirs[k + 1] == theirs[k])


def oracle_outside_code(ours, theirs):
    """Where the listings part, eu-stack's frame is its last and lies in no
    mapped object, while ours lies in one (see the module's comment)."""
    k = next((j for j in range(min(len(ours), len(theirs))) if ours[j] != theirs[j]), None)
    return k is not None and k == len(theirs) - 1 and theirs[k][0] == "" and ours[k][0] != ""


def ours(tool, core, sysroot):
    args = [tool, "--core", core] + (["--sysroot", sysroot] if sysroot != "-" else [])
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.strip()))
    threads = []
    for line in r.stdout.splitlines():
        stack = line.rsplit(" ", 1)[0]
        frames = []
        for f in stack.split(";"):
            if f.startswith("[truncated:") or f == "[empty]":
                continue
            m = re.fullmatch(r"([0-9a-f]+)\+0x([0-9a-f]+)", f)
            frames.append((m.group(1), int(m.group(2), 16)) if m else ("", int(f, 16) if f.startswith("0x") else -1))
        threads.append(list(reversed(frames)))
    return threads


def main():
    tool, manifest = sys.argv[1], sys.argv[2]
    minimum = float(sys.argv[sys.argv.index("--min") + 1]) if "--min" in sys.argv else 99.5
    verbose = "--verbose" in sys.argv
    total, equal, excluded = collections.Counter(), collections.Counter(), collections.Counter()
    classes = collections.Counter()
    for line in open(manifest):
        core, exe, sysroot = line.split()
        arch = "aarch64" if "/a64-" in core else "x86-64"
        with open(core, "rb") as f:
            machine = struct.unpack_from("<H", f.read(20), 18)[0]
        if machine != (183 if arch == "aarch64" else 62):
            print("%s: e_machine %d, not an %s core" % (core, machine, arch))
            return 1
        theirs, tids, ranges = eu_stack(core, exe)
        mine = ours(tool, core, sysroot)

        if len(theirs) != len(mine):
            print("%s: eu-stack lists %d threads, we %d" % (core, len(theirs), len(mine)))
        for i, (a, b) in enumerate(zip(mine, theirs)):
            total[arch] += 1
            if a == b:
                equal[arch] += 1
                continue
            if arch == "aarch64" and fallback_repeat(a, b):
                excluded[arch] += 1
                classes[(arch, "not comparable: libdwfl's aarch64 fallback repeats a frame")] += 1
                continue
            if oracle_outside_code(a, b):
                excluded[arch] += 1
                classes[(arch, "not comparable: eu-stack's last frame is outside every mapped object")] += 1
                continue
            k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
            if k == min(len(a), len(b)):
                why = "we stop earlier" if len(a) < len(b) else "we go further"
            else:
                why = "frame %s differs" % ("0 (leaf)" if k == 0 else "1" if k == 1 else ">1")
            classes[(arch, why)] += 1
            if verbose:
                print("%s thread %d: %s at frame %d of %d/%d" % (core, i, why, k, len(a), len(b)))
                print("   ours:     %s" % " ".join("%s+%x" % (f[0][:8], f[1]) for f in a[max(0, k - 2):k + 3]))
                print("   eu-stack: %s" % " ".join("%s+%x" % (f[0][:8], f[1]) for f in b[max(0, k - 2):k + 3]))
    status = 0
    for arch in sorted(total):
        comparable = total[arch] - excluded[arch]
        pct = 100.0 * equal[arch] / comparable if comparable else 0.0
        print("%s: %d of %d comparable threads equal to eu-stack frame for frame (%.2f%%); "
              "%d threads in all, %d not comparable" %
              (arch, equal[arch], comparable, pct, total[arch], excluded[arch]))
        if pct < minimum:
            status = 1
    for (arch, why), n in sorted(classes.items()):
        print("  %s: %d threads: %s" % (arch, n, why))
    return status


if __name__ == "__main__":
    sys.exit(main())
