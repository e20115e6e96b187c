"""What compare_llvm.py (x86-64, llvm-dwarfdump-14) and compare_llvm_a64.py
(aarch64, llvm-dwarfdump-19) share: reading llvm's row text and our dump,
and checking our table's address ranges against the rows llvm computed.
Each script decides on its own what our dump must say for a row; this module
only lines the two up."""
import bisect
import json
import re
import subprocess

PADDING = 16  # a gap between FDEs this long or longer must start with END


def off(n):
    return "" if n == 0 else "%+d" % n


def parse_regs(text):
    """'RBX=[CFA-16], RIP=[CFA-8]' -> {'RBX': '[CFA-16]', 'RIP': '[CFA-8]'}"""
    out = {}
    for part in re.split(r", (?=[A-Za-z][A-Za-z0-9]*=)", text):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def split_row(row):
    """llvm's row text (after '0x..: ') -> (the CFA rule's text, {reg: rule})."""
    if ": " in row:
        cfa_text, reg_text = row[len("CFA="):].split(": ", 1)
    else:
        cfa_text, reg_text = row[len("CFA="):], ""
    return cfa_text, parse_regs(reg_text)


def ours(tool, path):
    """(`TOOL --stats PATH` as a dict, [(pc, text)] of `TOOL --dump PATH`)."""
    def run(flag):
        return subprocess.run([tool, flag, path], capture_output=True, text=True,
                              check=True).stdout
    stats = json.loads(run("--stats"))
    rows = []
    for line in run("--dump").splitlines():
        pc, text = line.split(": ", 1)
        rows.append((int(pc, 16), text))
    return stats, rows


def table_fdes(sections):
    """The FDEs our table is built from, by address: all of .eh_frame, and
    .debug_frame's only where .eh_frame has none (our policy)."""
    fdes = sections[".eh_frame"]
    eh_ranges = [(s, e) for s, e, _ in fdes]
    for s, e, rows in sections[".debug_frame"]:
        if not any(s < ee and ss < e for ss, ee in eh_ranges):
            fdes.append((s, e, rows))
    fdes.sort(key=lambda f: f[0])
    return fdes


def wanted(fdes):
    """[(start, end, expected text)]: each llvm row as an address interval."""
    want = []
    for s, e, rows in fdes:
        for i, (pc, text) in enumerate(rows):
            want.append((pc, rows[i + 1][0] if i + 1 < len(rows) else e, text))
    return want


def row_at(rows, addr, starts=None):
    """Our row in force at addr: (pc, text), or (None, None) before the first.
    starts: the rows' addresses, when the caller has them already."""
    if starts is None:
        starts = [pc for pc, _ in rows]
    i = bisect.bisect_right(starts, addr) - 1
    return rows[i] if i >= 0 else (None, None)


def differences(want, rows, fdes):
    """Where our rows disagree with the expected intervals, and gaps of
    PADDING bytes or more between FDEs that do not start with END."""
    starts = [pc for pc, _ in rows]
    problems = []
    for start, end, text in want:
        # every row of ours that overlaps [start, end) must equal text
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        while i < len(rows) and rows[i][0] < end:
            o_end = rows[i + 1][0] if i + 1 < len(rows) else float("inf")
            if o_end > start and rows[i][1] != text:
                problems.append("0x%x: llvm %s, ours %s" % (max(start, rows[i][0]), text, rows[i][1]))
            i += 1
    covered = None
    for s, e, _ in fdes:
        if covered is not None and s - covered >= PADDING:
            pc, text = row_at(rows, covered, starts)
            if pc != covered or text != "END":
                problems.append("0x%x: gap of %d bytes without END (ours: %s)" % (covered, s - covered, text))
        covered = e if covered is None else max(covered, e)
    return problems
