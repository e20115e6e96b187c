#!/usr/bin/env python3
"""Compare unwind-sample stacks with `perf record --call-graph dwarf` stacks
of the same process (same time window), frame for frame.

usage: fidelity_check.py MAPS OURS PERF_SCRIPT
  MAPS         a copy of /proc/PID/maps (to name objects by build-ID)
  OURS         unwind-sample output (folded, root first)
  PERF_SCRIPT  `perf script -F ip,dso` output (leaf first, one blank line
               between samples; perf prints file addresses, and return
               addresses already minus one)

Both sides become leaf-first lists of (object path, address), return
addresses minus one, and are then symbolized the same way: each address is
replaced by the start of the .eh_frame FDE (function) that holds it, from
`readelf --debug-dump=frames` (the oracle; lua5.4 is stripped, so FDE ranges
stand in for function names).  The two samplers sample different instants,
so leaf PCs are compared by function.  One of our samples matches when, read from the root, it
is a prefix of some complete perf stack (equal, or perf caught the same path
deeper), or when a perf stack whose 8 KiB stack copy ran out before the root
is a leaf-side prefix of ours (at least 8 frames).  Because the two
samplers sample different instants, the test's criterion applies this to
our callers (all frames but the leaf); the full-stack figure is printed too.
Prints "callers_matched matched total exact perf_samples perf_complete"."""
import subprocess, sys

def build_ids(maps_path):
    ids = {}
    for line in open(maps_path):
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/"):
            path = parts[5]
            if path in ids.values():
                continue
            out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
            for l in out.splitlines():
                if "Build ID:" in l:
                    ids[l.split("Build ID:")[1].strip()] = path
    return ids

import bisect
_fdes = {}
def fde_ranges(path):
    if path not in _fdes:
        out = subprocess.run(["readelf", "--debug-dump=frames", path],
                             capture_output=True, text=True).stdout
        r = []
        for l in out.splitlines():
            if " FDE " in l and "pc=" in l:
                lo, hi = l.split("pc=")[1].split("..")
                r.append((int(lo, 16), int(hi, 16)))
        r.sort()
        _fdes[path] = (r, [x[0] for x in r])
    return _fdes[path]

def symbolize(frame):
    path, addr = frame
    if not path.startswith("/"):
        return frame
    r, starts = fde_ranges(path)
    i = bisect.bisect_right(starts, addr) - 1
    if i >= 0 and r[i][0] <= addr < r[i][1]:
        return (path, "fde@%x" % r[i][0])
    return frame

def main():
    maps, ours_path, perf_path = sys.argv[1:4]
    ids = build_ids(maps)
    ours = []
    for line in open(ours_path):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        frames = [f for f in stack.split(";") if not f.startswith("[k]")]
        leaf_first = []
        truncated = frames and frames[0].startswith("[truncated")
        if truncated:
            frames = frames[1:]
        for i, f in enumerate(reversed(frames)):
            obj, _, addr = f.partition("+0x")
            a = int(addr, 16) - (0 if i == 0 else 1)
            leaf_first.append((ids.get(obj, obj), a))
        ours.append((tuple(symbolize(f) for f in leaf_first), int(count)))

    perf, cur = [], []
    for line in open(perf_path):
        line = line.strip()
        if not line:
            if cur:
                perf.append(tuple(cur))
            cur = []
            continue
        parts = line.split()
        try:
            addr = int(parts[0], 16)
        except ValueError:
            continue
        dso = parts[1].strip("()") if len(parts) > 1 else "?"
        cur.append((dso, addr))
    if cur:
        perf.append(tuple(cur))
    perf = [tuple(symbolize(f) for f in p) for p in perf]
    # perf sometimes adds a bogus frame above _start (-1): drop it.
    perf = [tuple(f for f in p if isinstance(f[1], str) or f[1] < 1 << 63) for p in perf]
    roots = {st[-1] for st, _ in ours if st}
    complete = [p for p in perf if p and p[-1] in roots]
    truncated = [p for p in perf if p and p[-1] not in roots and len(p) >= 8]
    # Root-first prefixes of perf's complete stacks: our stack matches when,
    # read from the root, it is one of them (perf may have caught the same
    # path deeper: the frame where we stopped is then a caller there, and
    # names the same function).
    prefixes = set()
    for p in complete:
        r = tuple(reversed(p))
        for k in range(1, len(r) + 1):
            prefixes.add(r[:k])
    matched = callers = exact = total = 0
    perf_set = set(complete)
    for stack, count in ours:
        total += count
        if stack in perf_set:
            exact += count
        if tuple(reversed(stack)) in prefixes or \
           any(stack[:len(p)] == p for p in truncated):
            matched += count
        # The callers alone (return addresses are discrete, so a different
        # instant of the same path gives the same ones); the leaf function
        # may simply not have been caught by perf in its samples.
        if tuple(reversed(stack[1:])) in prefixes or \
           any(stack[1:len(p)] == p[1:] for p in truncated):
            callers += count
    print(callers, matched, total, exact, len(perf), len(complete))

main()
