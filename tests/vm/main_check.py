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
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from nm_names import Symbols, build_id, folded  # noqa: E402


def main():
    binary, lib, output = sys.argv[1:4]
    syms = Symbols(binary)
    lib_bid = build_id(lib)

    with_main = total = via_lib = via_handler = in_kernel = in_kernel_main = 0
    for frames, n, kernel in folded(output):
        total += n
        names = set()
        for i, f in enumerate(frames):
            if f.partition("+0x")[0] == lib_bid:
                names.add("[lib]")
                continue
            fn = syms.frame(f, i == len(frames) - 1)
            if fn is not None:
                names.add(fn)
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
