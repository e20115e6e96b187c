#!/usr/bin/env python3
"""Check unwind-sample's folded output for the deep fixture's chain mode.

usage: stacks_check.py BINARY OUTPUT [--jit] [--callers-out FILE]
       stacks_check.py --compare CALLERS_A CALLERS_B

Frames of BINARY (matched by its build-ID) are named with `nm`'s symbol
table (the oracle); a return address is looked up at address - 1.  A
sample is good when, from `main` on, its frames are exactly main,
chain_00 .. chain_39, chain_spin (with --jit: main, [anon], jit_spin, for
`deep jit`).  Prints "good total root_start" and
exits 0; writes the raw frames from main to the leaf's caller of every good
stack, with counts, to --callers-out.  --compare prints the share (percent)
of samples of each file whose caller chain the other file has too: two walks
of the same binary in separate runs sample different leaf PCs, but return
addresses have one value per call site, so their caller chains must agree."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from nm_names import Symbols, folded  # noqa: E402

def main():
    binary, output = sys.argv[1], sys.argv[2]
    suffix_out = None
    if "--callers-out" in sys.argv:
        suffix_out = sys.argv[sys.argv.index("--callers-out") + 1]
    syms = Symbols(binary, base_names=True)
    expect = ["main"] + ["chain_%02d" % i for i in range(40)] + ["chain_spin"]
    if "--jit" in sys.argv:
        expect = ["main", "[anon]", "jit_spin"]

    def name(frame, is_leaf):
        if frame.partition("+0x")[0] == "[anon]":
            return "[anon]"
        return syms.frame(frame, is_leaf)

    good = total = rooted = 0
    suffixes = {}
    for frames, count, _ in folded(output):
        total += count
        names = [name(f, i == len(frames) - 1) for i, f in enumerate(frames)]
        if "main" in names:
            k = names.index("main")
            if names[k:] == expect:
                good += count
                if names[0] == "_start":
                    rooted += count
                key = ";".join(frames[k:-1])
                suffixes[key] = suffixes.get(key, 0) + count
    if suffix_out:
        with open(suffix_out, "w") as f:
            for k, v in sorted(suffixes.items()):
                f.write("%s %d\n" % (k, v))
    print(good, total, rooted)

def compare(a_path, b_path):
    def load(path):
        d = {}
        for line in open(path):
            key, _, n = line.rstrip("\n").rpartition(" ")
            d[key] = d.get(key, 0) + int(n)
        return d
    a, b = load(a_path), load(b_path)
    def share(x, y):
        total = sum(x.values())
        return 100 * sum(n for k, n in x.items() if k in y) // total if total else 0
    print(share(a, b), share(b, a))

if len(sys.argv) == 4 and sys.argv[1] == "--compare":
    compare(sys.argv[2], sys.argv[3])
else:
    main()
