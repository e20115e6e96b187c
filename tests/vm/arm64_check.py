#!/usr/bin/env python3
"""Check the folded stacks unwind-sample took in the arm64 VM.

  arm64_check.py FOLDED FIXTURE

Names each frame of the fixture with `nm` (the fixture is static, so every
frame is in it): the main thread's samples must run from _start through
main, the other threads' from thread_start (glibc's clone), and >= 99% of
all samples must be complete (no [truncated:...])."""
import bisect, subprocess, sys

folded, fixture = sys.argv[1:3]
syms = []
for l in subprocess.run(["nm", "-S", "--defined-only", fixture], capture_output=True, text=True).stdout.splitlines():
    f = l.split()
    if len(f) == 4 and f[2] in "tTwW":
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]


def name(frame):
    if frame.startswith("[") or "+0x" not in frame:
        return frame
    a = int(frame.split("+0x")[1], 16)
    i = bisect.bisect_right(starts, a) - 1
    return syms[i][2] if i >= 0 and a <= syms[i][0] + syms[i][1] else "?"


total = complete = main_ok = main_total = 0
bad = None
for line in open(folded):
    stack, n = line.rsplit(" ", 1)
    n = int(n)
    names = [name(f) for f in stack.split(";")]
    total += n
    if names[0].startswith("[truncated"):
        bad = bad or " ".join(names[:6])
        continue
    if names[0] == "_start":
        main_total += n
        if "main" in names:
            main_ok += n
        complete += n
    elif names[0] == "thread_start":
        complete += n
    else:
        bad = bad or " ".join(names[:6])
print("%d samples: %d complete (%.1f%%); main thread %d, through main %d" %
      (total, complete, 100.0 * complete / max(total, 1), main_total, main_ok))
if bad:
    print("first incomplete: %s" % bad)
ok = total >= 50 and complete * 100 >= total * 99 and main_total >= 10 and main_ok == main_total
sys.exit(0 if ok else 1)
