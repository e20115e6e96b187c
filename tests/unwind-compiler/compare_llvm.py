#!/usr/bin/env python3
"""Compare `unwind-compile --dump ELF` with llvm-dwarfdump's interpreted CFI.

llvm-dwarfdump prints, after each FDE's program, the rows it computed:
    0x270e1: CFA=RSP+16: RBX=[CFA-16], RIP=[CFA-8]
This script reads those rows (clipped to each FDE's range), decides on its
own what our table must say for each one (the three registers an x86-64
walker needs, in our dump notation, or an explicit UNSUPPORTED/SIGNAL), and
checks every address range against our dump.  It shares no code with the
compiler: an independent reading of the same CFI.

Rules checked:
  * every address covered by an FDE maps to the expected row;
  * a gap of 16 bytes or more between FDEs starts with END;
  * a shorter gap (alignment padding) is either END or continues the row before;
  * our count of CFI rows equals llvm's.
Exit status 0 when everything agrees; prints a summary line either way.
"""
import bisect
import re
import subprocess
import sys

from llvm_cfi import differences, off, ours, row_at, split_row, table_fdes, wanted

REGS = ["RAX", "RDX", "RCX", "RBX", "RSI", "RDI", "RBP", "RSP", "R8", "R9",
        "R10", "R11", "R12", "R13", "R14", "R15", "RIP"]
GPR = set(REGS[:16])
def classify_cfa(cfa):
    """Return (kind, text) for the CFA rule, kind in REG/DEREF/PLT or an
    UNSUPPORTED reason."""
    m = re.fullmatch(r"([A-Z0-9]+)([+-]\d+)?", cfa)
    if m and m.group(1) in GPR:
        n = int(m.group(2) or 0)
        if not -2**31 <= n < 2**31:
            return "UNSUPPORTED", "offset-range"
        return "REG", "CFA=%s%s" % (m.group(1), off(n))
    m = re.fullmatch(r"DW_OP_breg(\d+) [A-Z0-9]+([+-]\d+)(.*)", cfa)
    if not m or int(m.group(1)) > 15:
        return "UNSUPPORTED", "cfa-expression"
    reg, n, rest = REGS[int(m.group(1))], int(m.group(2)), m.group(3)
    if not -2**31 <= n < 2**31:
        return "UNSUPPORTED", "cfa-expression"
    if rest == "":
        return "REG", "CFA=%s%s" % (reg, off(n))
    m2 = re.fullmatch(r", DW_OP_deref(?:, DW_OP_plus_uconst 0x([0-9a-f]+))?", rest)
    if m2:
        add = int(m2.group(1) or "0", 16)
        if add > 127:
            return "UNSUPPORTED", "cfa-expression"
        return "DEREF", "CFA=[%s%s]%s" % (reg, off(n), off(add))
    m2 = re.fullmatch(r", DW_OP_breg16 RIP\+0, DW_OP_lit15, DW_OP_and, DW_OP_lit(\d+), "
                      r"DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus", rest)
    if m2 and reg == "RSP" and int(m2.group(1)) <= 15:
        return "PLT", "CFA=PLT(%s%s,%d)" % (reg, off(n), int(m2.group(1)))
    return "UNSUPPORTED", "cfa-expression"


def location(value, name, lo, hi):
    """A register's rule -> our notation; None when inexpressible."""
    if value in (None, "same", "unspecified"):
        return "" if name == "RBP" else None
    if value == "undefined":
        return ": %s=undefined" % name
    if value in GPR:
        return ": %s=%s" % (name, value)
    m = re.fullmatch(r"\[CFA([+-]\d+)?\]", value)
    if m:
        n = int(m.group(1) or 0)
        if lo <= n <= hi:
            return ": %s=[CFA%s]" % (name, off(n))
    return None


def expected(row, signal):
    """llvm's row text (after '0x..: ') -> our dump text."""
    cfa_text, regs = split_row(row)
    if signal:
        if cfa_text == "DW_OP_breg7 RSP+160, DW_OP_deref" and regs.get("RIP") == "[DW_OP_breg7 RSP+168]":
            return "CFA=SIGNAL"
        return "UNSUPPORTED(signal-layout)"
    if cfa_text == "invalid":
        return "UNSUPPORTED(cfa-expression)"
    kind, text = classify_cfa(cfa_text)
    if kind == "UNSUPPORTED":
        return "UNSUPPORTED(%s)" % text
    if "RSP" in regs and regs["RSP"] != "CFA":
        return "UNSUPPORTED(rsp-rule)"
    rbp = location(regs.get("RBP"), "RBP", -2**15, 2**15 - 1)
    if rbp is None:
        return "UNSUPPORTED(rbp-rule)"
    rip = location(regs.get("RIP"), "RIP", -128, 127)
    if rip is None:
        return "UNSUPPORTED(ra-rule)"
    return text + rbp + rip


class CfaSim:
    """Tracks the CFA rule through the DW_CFA_* ops llvm-dwarfdump lists,
    twice: as DWARF defines it, and as LLVM 14 computes it.  LLVM 14 has two
    known defects we must not mistake for ours:
      * DW_CFA_restore_state restores the register rules but not the CFA
        (DWARF 5 6.4.2.4 says the whole row; GCC's output relies on it, and
        libdw does it);
      * CFA offsets are kept in 32 bits (RSP +4294967296 prints as RSP).
    For each row llvm prints, the LLVM-14 reading must reproduce llvm's CFA
    exactly (else this simulation is wrong and the test fails); the DWARF
    reading then gives the CFA the row really has."""

    def __init__(self, initial):
        self.good = initial
        self.llvm = initial
        self.stack = []

    @staticmethod
    def text(cfa):
        if cfa[0] == "reg":
            return cfa[1] + off(cfa[2])
        if cfa[0] == "invalid":
            return "invalid"
        return cfa[1]

    def op(self, name, arg):
        if name == "def_cfa" or name == "def_cfa_sf":
            reg, n = arg.split()
            n = int(n)
            self.good = ("reg", reg, n)
            self.llvm = ("reg", reg, (n + 2**31) % 2**32 - 2**31)
        elif name == "def_cfa_register":
            # Valid only on a register CFA (DWARF 5 6.4.2.2); LLVM 14
            # makes an expression CFA into reg+0.
            self.good = ("reg", arg, self.good[2]) if self.good[0] == "reg" else ("invalid",)
            self.llvm = ("reg", arg, self.llvm[2] if self.llvm[0] == "reg" else 0)
        elif name == "def_cfa_offset" or name == "def_cfa_offset_sf":
            n = int(arg)
            self.good = ("reg", self.good[1], n) if self.good[0] == "reg" else ("invalid",)
            self.llvm = ("reg", self.llvm[1], (n + 2**31) % 2**32 - 2**31)
        elif name == "def_cfa_expression":
            self.good = self.llvm = ("expr", arg)
        elif name == "remember_state":
            self.stack.append(self.good)
        elif name == "restore_state":
            self.good = self.stack.pop() if self.stack else self.good


def llvm_rows(path, exceptions):
    """{section: [(fde_start, fde_end, [(pc, expected_text)])]} for
    .eh_frame and .debug_frame (llvm-dwarfdump 14 prints both)."""
    out = subprocess.run(["llvm-dwarfdump-14", "--debug-frame", path],
                         capture_output=True, text=True, check=True).stdout
    cies = {}
    fdes = []
    by_section = {".eh_frame": [], ".debug_frame": []}
    cur = None       # the FDE being read: [start, end, rows, signal]
    cur_cie = None   # the CIE being read: {"aug", "align", "cfa"}
    sim = None
    states = {}      # pc -> (llvm's CFA text, the DWARF CFA text), at each row start
    pc = 0
    align = 1

    def close_row():
        states[pc] = (CfaSim.text(sim.llvm), CfaSim.text(sim.good))

    for line in out.splitlines():
        m = re.match(r"(\.eh_frame|\.debug_frame) contents:", line)
        if m:
            fdes = by_section[m.group(1)]
            cies = {}
            cur = cur_cie = sim = None
            continue
        m = re.match(r"([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ CIE", line)
        if m:
            cur_cie = {"aug": "", "align": 1, "cfa": ("reg", "?", 0)}
            cies[int(m.group(1), 16)] = cur_cie
            cur = sim = None
            continue
        m = re.match(r"[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.\.([0-9a-f]+)", line)
        if m:
            cie = cies.get(int(m.group(1), 16), {"aug": "", "align": 1, "cfa": ("reg", "?", 0)})
            cur = [int(m.group(2), 16), int(m.group(3), 16), [], "S" in cie["aug"]]
            fdes.append(cur)
            cur_cie = None
            sim = CfaSim(cie["cfa"])
            pc = cur[0]
            align = cie["align"]
            states = {}
            continue
        if cur_cie is not None:
            m = re.match(r"\s+Augmentation:\s+\"(.*)\"", line)
            if m:
                cur_cie["aug"] = m.group(1)
            m = re.match(r"\s+Code alignment factor:\s+(\d+)", line)
            if m:
                cur_cie["align"] = int(m.group(1))
            m = re.match(r"\s+DW_CFA_(def_cfa\w*|remember_state|restore_state):\s*(.*)$", line)
            if m:
                s = CfaSim(cur_cie["cfa"])
                s.op(m.group(1), m.group(2).strip())
                cur_cie["cfa"] = s.good
            continue
        if cur is None:
            continue
        m = re.match(r"\s+DW_CFA_(\w+):\s*(.*)$", line)
        if m:
            name, arg = m.group(1), m.group(2).strip()
            if name.startswith("advance_loc"):
                close_row()
                pc += int(arg) * align
            elif name == "set_loc":
                close_row()
                pc = int(arg, 16)
            else:
                sim.op(name, arg)
            continue
        m = re.match(r"\s+0x([0-9a-f]+): (CFA=.*)$", line)
        if m:
            row_pc = int(m.group(1), 16)
            if not states or max(states) < pc:
                close_row()  # the last row, after the program ended
            text = m.group(2)
            cfa_text = text[len("CFA="):].split(": ", 1)[0]
            llvm_cfa, good_cfa = states.get(row_pc, (None, None))
            if llvm_cfa != cfa_text:
                exceptions["simulation disagrees with llvm at 0x%x: %s vs %s" % (row_pc, llvm_cfa, cfa_text)] = 10**9
            elif good_cfa == "invalid":
                why = "invalid DWARF: def_cfa_register/offset on an expression CFA (LLVM 14 reads reg+N)"
                exceptions[why] = exceptions.get(why, 0) + 1
                text = "CFA=invalid"
            elif good_cfa != cfa_text:
                why = "LLVM 14 CFA defect (restore_state, or 32-bit offsets)"
                exceptions[why] = exceptions.get(why, 0) + 1
                text = "CFA=" + good_cfa + text[len("CFA=") + len(cfa_text):]
            if cur[0] <= row_pc < cur[1]:
                if cur[2] and cur[2][-1][0] == row_pc:
                    cur[2].pop()  # a zero-length row: the later one holds
                cur[2].append((row_pc, expected(text, cur[3])))
    return {sec: [(s, e, rows) for s, e, rows, _ in f if s != 0 and e > s and rows]
            for sec, f in by_section.items()}


def main():
    if len(sys.argv) < 3:
        print("usage: compare_llvm.py UNWIND-COMPILE ELF", file=sys.stderr)
        return 2
    tool, path = sys.argv[1], sys.argv[2]
    stats, rows = ours(tool, path)
    exceptions = {}
    fdes = table_fdes(llvm_rows(path, exceptions))
    want = wanted(fdes)
    llvm_count = len(want)
    problems = differences(want, rows, fdes)
    covered_end = max(e for _, e, _ in fdes)
    pc, text = row_at(rows, covered_end)
    if text != "END" or pc != covered_end:
        problems.append("0x%x: no END after the last FDE" % covered_end)
    # our rows must not start where llvm has no row, except END and padding
    cover = sorted((s, e) for s, e, _ in fdes)
    cstarts = [s for s, _ in cover]
    for pc, text in rows:
        j = bisect.bisect_right(cstarts, pc) - 1
        inside = j >= 0 and cover[j][0] <= pc < cover[j][1]
        if not inside and text != "END":
            problems.append("0x%x: our row %s where llvm has no FDE" % (pc, text))
    if stats["cfi_rows"] != llvm_count:
        problems.append("CFI row count: ours %d, llvm %d" % (stats["cfi_rows"], llvm_count))

    for what, n in sorted(exceptions.items()):
        if n == 10**9:
            problems.append(what)
        else:
            print("  explained: %d rows: %s" % (n, what))
    for p in problems[:15]:
        print("  " + p)
    print("%s: %d llvm rows, %d table entries, %d differences" % (path, llvm_count, len(rows), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
