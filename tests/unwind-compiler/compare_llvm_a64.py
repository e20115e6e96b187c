#!/usr/bin/env python3
"""Compare `unwind-compile --dump ELF` of an aarch64 object with
llvm-dwarfdump-19's interpreted CFI (`--eh-frame`, `--debug-frame`).

llvm-dwarfdump-19 prints, after each FDE's program, the rows it computed:
    0x27584: CFA=WSP+48: W29=[CFA-48], W30=[CFA-40], reg34=1
(WSP/W29/W30 are SP/X29/X30; reg34 is RA_SIGN_STATE, which
DW_CFA_AARCH64_negate_ra_state toggles).  This script decides on its own what
our dump must say for each row, from the format's documented limits
(docs/unwind-table-format.md, "aarch64"), and checks every address range.
LLVM 19 has none of LLVM 14's restore_state defect, so no simulation of
llvm's interpreter is needed: its rows are taken as they are.

Checked: every address an FDE covers maps to the expected row; gaps of 16
bytes or more start with END; our CFI row count equals llvm's.
"""
import re
import subprocess
import sys

from llvm_cfi import differences, off, ours, split_row, table_fdes, wanted


def reg_name(w):
    """llvm's W-name -> ours: WSP -> SP, W29 -> X29."""
    if w == "WSP":
        return "SP"
    m = re.fullmatch(r"W(\d+)", w)
    return "X%d" % int(m.group(1)) if m and int(m.group(1)) <= 30 else None


def cfa_offset(value):
    m = re.fullmatch(r"\[CFA([+-]\d+)?\]", value or "")
    return int(m.group(1) or 0) if m else None


def expected(row, signal):
    cfa_text, regs = split_row(row)
    fp, ra = regs.get("W29"), regs.get("W30")
    if signal:
        if cfa_text == "W29" and cfa_offset(fp) == 0 and cfa_offset(ra) == 8:
            return "CFA=SIGNAL"
        return "UNSUPPORTED(signal-layout)"
    m = re.fullmatch(r"(W[A-Z0-9]+)([+-]\d+)?", cfa_text)
    if not m:
        m = re.fullmatch(r"DW_OP_breg(\d+) W[A-Z0-9]+([+-]\d+)", cfa_text)
        if not m or int(m.group(1)) > 31:
            return "UNSUPPORTED(cfa-expression)"
        base = "SP" if int(m.group(1)) == 31 else "X%d" % int(m.group(1))
    else:
        base = reg_name(m.group(1))
        if base is None:
            return "UNSUPPORTED(cfa-expression)"
    n = int(m.group(2) or 0)
    if not -2**31 <= n < 2**31:
        return "UNSUPPORTED(offset-range)"
    text = "CFA=%s%s" % (base, off(n))
    if "WSP" in regs and regs["WSP"] != "CFA":
        return "UNSUPPORTED(rsp-rule)"
    fp_off = cfa_offset(fp)
    if fp in (None, "same"):
        pass
    elif fp == "undefined":
        text += ": X29=undefined"
    elif fp_off is not None and fp_off % 8 == 0 and -2**15 <= fp_off // 8 < 2**15:
        text += ": X29=[CFA%s]" % off(fp_off)
    elif reg_name(fp) and fp != "WSP":
        text += ": X29=%s" % reg_name(fp)
    else:
        return "UNSUPPORTED(rbp-rule)"
    ra_off = cfa_offset(ra)
    if ra in (None, "same"):
        pass
    elif ra == "undefined":
        text += ": X30=undefined"
    elif ra_off is not None and ((fp_off is not None and ra_off == fp_off + 8) or
                                 (ra_off % 8 == 0 and -128 <= ra_off // 8 < 128)):
        text += ": X30=[CFA%s]" % off(ra_off)
    elif reg_name(ra) and ra != "WSP":
        text += ": X30=%s" % reg_name(ra)
    else:
        return "UNSUPPORTED(ra-rule)"
    if regs.get("reg34") == "1":
        text += ": PAC"
    return text


def llvm_rows(path):
    out = subprocess.run(["llvm-dwarfdump-19", "--eh-frame", "--debug-frame", path],
                         capture_output=True, text=True, check=True).stdout
    by_section = {".eh_frame": [], ".debug_frame": []}
    fdes, cies, cur, cur_cie = [], {}, None, None
    for line in out.splitlines():
        m = re.match(r"(\.eh_frame|\.debug_frame) contents:", line)
        if m:
            fdes = by_section[m.group(1)]
            cies, cur, cur_cie = {}, None, None
            continue
        m = re.match(r"([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ CIE", line)
        if m:
            cur_cie = cies.setdefault(int(m.group(1), 16), {"aug": ""})
            cur = None
            continue
        m = re.match(r"[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.\.([0-9a-f]+)", line)
        if m:
            cie = cies.get(int(m.group(1), 16), {"aug": ""})
            cur = [int(m.group(2), 16), int(m.group(3), 16), [], "S" in cie["aug"]]
            fdes.append(cur)
            cur_cie = None
            continue
        if cur_cie is not None:
            m = re.match(r"\s+Augmentation:\s+\"(.*)\"", line)
            if m:
                cur_cie["aug"] = m.group(1)
            continue
        m = re.match(r"\s+0x([0-9a-f]+): (CFA=.*)$", line)
        if m and cur is not None:
            pc = int(m.group(1), 16)
            if cur[0] <= pc < cur[1]:
                if cur[2] and cur[2][-1][0] == pc:
                    cur[2].pop()
                cur[2].append((pc, expected(m.group(2), cur[3])))
    return {sec: [(s, e, rows) for s, e, rows, _ in f if s != 0 and e > s and rows]
            for sec, f in by_section.items()}


def main():
    if len(sys.argv) != 3:
        print("usage: compare_llvm_a64.py UNWIND-COMPILE ELF", file=sys.stderr)
        return 2
    tool, path = sys.argv[1], sys.argv[2]
    stats, rows = ours(tool, path)
    fdes = table_fdes(llvm_rows(path))
    want = wanted(fdes)
    unsupported = sum(text.startswith("UNSUPPORTED") for _, _, text in want)
    problems = differences(want, rows, fdes)
    if stats["cfi_rows"] != len(want):
        problems.append("CFI row count: ours %d, llvm %d" % (stats["cfi_rows"], len(want)))
    for p in problems[:15]:
        print("  " + p)
    print("%s: %d llvm rows (%d UNSUPPORTED), %d table entries, %.3f B/row, %d differences" %
          (path, len(want), unsupported, len(rows), stats["bytes_per_row"], len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
