#!/usr/bin/env python3
"""Share of unwind-sample's samples that reach main, for the VM matrix.

usage: main_check.py BINARY LIB OUTPUT

BINARY is the unstripped twin of the sampled program (same build-ID; strip
keeps the note), LIB a shared library it calls.  Frames are named with nm's
symbols (the oracle), a return address at address - 1.  Prints
"with_main total through_lib through_handler in_kernel in_kernel_main":
samples whose stack has main, all samples, samples with a frame in LIB,
samples with a frame of the fixture's signal handler chain (handler_*),
samples taken in the kernel (the user registers came from the task's
saved pt_regs), and how many of those have main."""
import bisect, subprocess, sys

def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    sys.exit("no build-id in " + path)

def symbols(path):
    out = subprocess.run(["nm", "-n", "-S", "--defined-only", path],
                         capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2].lower() in "tw":
            syms.append((int(p[0], 16), int(p[1], 16), p[3]))
    syms.sort()
    return syms

def main():
    binary, lib, output = sys.argv[1:4]
    bid, lib_bid = build_id(binary), build_id(lib)
    syms = symbols(binary)
    starts = [s[0] for s in syms]

    def name(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and syms[i][0] <= addr < syms[i][0] + max(syms[i][1], 1):
            return syms[i][2]
        return "?"

    with_main = total = via_lib = via_handler = in_kernel = in_kernel_main = 0
    for line in open(output):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        all_frames = stack.split(";")
        frames = [f for f in all_frames if not f.startswith("[k]")]
        kernel = len(frames) != len(all_frames)
        names = set()
        for i, f in enumerate(frames):
            obj, _, addr = f.partition("+0x")
            if obj == lib_bid:
                names.add("[lib]")
            elif obj == bid:
                leaf = i == len(frames) - 1
                names.add(name(int(addr, 16) - (0 if leaf else 1)))
        if "main" in names:
            with_main += n
            if kernel:
                in_kernel_main += n
        if kernel:
            in_kernel += n
        if "[lib]" in names:
            via_lib += n
        if any(x.startswith("handler_") for x in names):
            via_handler += n
    print(with_main, total, via_lib, via_handler, in_kernel, in_kernel_main)

main()
