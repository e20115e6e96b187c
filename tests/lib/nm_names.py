"""Names for unwind-sample's frames from nm's symbol table (the oracle),
shared by the checkers of its folded output (tests/bpf/stacks_check.py,
tests/vm/main_check.py).  A frame is "BUILD_ID+0xADDR"; a return address
is looked up at ADDR - 1, the leaf's PC at ADDR."""
import bisect
import subprocess
import sys


def build_id(path):
    """readelf's build-ID of path; exits when it has none."""
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    sys.exit("no build-id in " + path)


class Symbols:
    """The function symbols of an ELF file; with base_names, a GCC clone's
    name loses its suffix (chain_00.cold -> chain_00)."""

    def __init__(self, path, base_names=False):
        out = subprocess.run(["nm", "-n", "-S", "--defined-only", path],
                             capture_output=True, text=True).stdout
        syms = []
        for line in out.splitlines():
            p = line.split()
            if len(p) == 4 and p[2].lower() in "tw":
                syms.append((int(p[0], 16), int(p[1], 16), p[3].split(".")[0] if base_names else p[3]))
        syms.sort()
        self.syms = syms
        self.starts = [s[0] for s in syms]
        self.build_id = build_id(path)

    def name(self, addr):
        """The symbol holding addr, or "?"."""
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and self.syms[i][0] <= addr < self.syms[i][0] + max(self.syms[i][1], 1):
            return self.syms[i][2]
        return "?"

    def frame(self, frame, is_leaf):
        """The name of a frame of this file's build-ID; None for another object's."""
        obj, _, addr = frame.partition("+0x")
        if obj != self.build_id:
            return None
        return self.name(int(addr, 16) - (0 if is_leaf else 1))


def folded(path):
    """The stacks of unwind-sample's folded output: (user frames root first,
    count, whether the sample had kernel frames) per line."""
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        all_frames = stack.split(";")
        frames = [f for f in all_frames if not f.startswith("[k]")]
        yield frames, int(count), len(frames) != len(all_frames)
