#!/usr/bin/env python3
"""Compare unwind-sample's folded stacks of a Go program with the program's
own runtime/pprof CPU profile, at the level of functions.

usage: go_stacks_check.py BINARY OURS.folded GO_PROFILE

Names come from `go tool addr2line` (the Go toolchain's own reader) for our
addresses (return addresses looked up at address - 1) and from
`go tool pprof -raw` for Go's profile; both sides use the physical
(outermost, not inlined) function of each frame.

Samples taken while Go's own SIGPROF handler runs (a frame in
runtime.sigtramp, which is TOPFRAME: Go's traceback and ours stop there) can
never be in Go's profile, which records where the signal landed, not the
handler: they are counted apart (in_handler) and left out of total.

Prints: total complete edges_ok both no_progress in_handler unseen_edges
  complete     samples that stopped cleanly at a Go root (runtime.goexit,
               runtime.mstart, runtime.rt0_go)
  edges_ok     samples whose every caller->callee edge occurs in Go's profile
               (edges out of the roots excepted: Go's profiles omit goexit; compiler-made
               wrappers Go's profile never shows are skipped, as Go skips them)
  both         samples with both
"""
import collections, re, subprocess, sys

ROOTS = {"runtime.goexit", "runtime.mstart", "runtime.rt0_go"}


def addr2line(binary, addrs):
    inp = "".join("0x%x\n" % a for a in addrs)
    out = subprocess.run(["go", "tool", "addr2line", binary], input=inp, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return {a: out[2 * i] for i, a in enumerate(addrs)}


def go_edges(profile):
    raw = subprocess.run(["go", "tool", "pprof", "-raw", profile], capture_output=True,
                         text=True, check=True).stdout
    samples, locs, section, cur = [], {}, None, None
    for line in raw.split("\n"):
        if line.startswith("Samples:"):
            section = "s"; continue
        if line.startswith("Locations"):
            section = "l"; continue
        if line.startswith("Mappings"):
            break
        if section == "s":
            m = re.match(r"\s+\d+\s+\d+:((?: \d+)+)\s*$", line)
            if m:
                samples.append([int(x) for x in m.group(1).split()])
        elif section == "l":
            m = re.match(r"\s+(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", line)
            if m:
                cur = int(m.group(1))
                locs[cur] = m.group(2)
            elif cur is not None and line.strip():
                locs[cur] = line.split()[0]  # an inlined location: the last line is physical
    edges = set()
    for s in samples:
        names = [locs.get(i, "?") for i in s]  # leaf first
        for callee, caller in zip(names, names[1:]):
            if callee != caller:
                edges.add((caller, callee))
    return edges


def main():
    binary, ours, profile = sys.argv[1:4]
    stacks = []
    addrs = set()
    for line in open(ours):
        line = line.rstrip("\n")
        if not line:
            continue
        frames, count = line.rsplit(" ", 1)
        frames = frames.split(";")
        truncated = frames[0].startswith("[truncated:")
        reason = frames[0][len("[truncated:"):-1] if truncated else ""
        if truncated:
            frames = frames[1:]
        # root first; the last frame is the leaf
        user = []
        for i, f in enumerate(frames):
            if f.startswith("[k]") or "+0x" not in f:
                continue
            a = int(f.rsplit("+0x", 1)[1], 16)
            user.append(a)
        looked = [a - 1 for a in user[:-1]] + user[-1:]
        addrs.update(looked)
        stacks.append((looked, reason, int(count)))
    names = addr2line(binary, sorted(addrs))
    edges = go_edges(profile)
    in_profile = {f for e in edges for f in e}
    total = complete = edges_ok = both = no_progress = in_handler = 0
    unseen = collections.Counter()
    for looked, reason, count in stacks:
        fn = [names.get(a, "?") for a in looked]
        # Go's traceback elides the wrappers the compiler generates for `go f(x)`
        # and method values (closures ".funcN", "-fm"); drop them when Go's
        # profile never shows them.
        fn = [f for i, f in enumerate(fn) if i == len(fn) - 1 or f in in_profile or
              not re.search(r"\.func\d+$|-fm$", f)]
        if "runtime.sigtramp" in fn and not reason:
            in_handler += count
            continue
        total += count
        if reason == "no-progress":
            no_progress += count
        ok_root = not reason and fn and fn[0] in ROOTS
        ok_edges = True
        for caller, callee in zip(fn, fn[1:]):
            if caller == callee or caller in ROOTS:
                continue
            if (caller, callee) not in edges:
                ok_edges = False
                unseen[(caller, callee)] += count
        complete += count if ok_root else 0
        edges_ok += count if ok_edges else 0
        both += count if ok_root and ok_edges else 0
    print(total, complete, edges_ok, both, no_progress, in_handler,
          ",".join("%s->%s:%d" % (a, b, n) for (a, b), n in unseen.most_common(5)) or "-")


if __name__ == "__main__":
    main()
