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
import subprocess, sys, bisect

def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    sys.exit("no build-id in " + path)

def symbols(path):
    out = subprocess.run(["nm", "-n", "-S", "--defined-only", path], capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() in "tw":
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3].split(".")[0]))
    syms.sort()
    return syms

def main():
    binary, output = sys.argv[1], sys.argv[2]
    suffix_out = None
    if "--callers-out" in sys.argv:
        suffix_out = sys.argv[sys.argv.index("--callers-out") + 1]
    bid = build_id(binary)
    syms = symbols(binary)
    starts = [s[0] for s in syms]
    expect = ["main"] + ["chain_%02d" % i for i in range(40)] + ["chain_spin"]
    if "--jit" in sys.argv:
        expect = ["main", "[anon]", "jit_spin"]

    def name(frame, is_leaf):
        obj, _, addr = frame.partition("+0x")
        if obj == "[anon]":
            return "[anon]"
        if obj != bid:
            return None
        a = int(addr, 16) - (0 if is_leaf else 1)
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and syms[i][0] <= a < syms[i][0] + max(syms[i][1], 1):
            return syms[i][2]
        return "?"

    good = total = rooted = 0
    suffixes = {}
    for line in open(output):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        count = int(count)
        total += count
        frames = [f for f in stack.split(";") if not f.startswith("[k]")]
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
