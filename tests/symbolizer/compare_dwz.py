#!/usr/bin/env python3
"""Three-way comparison on a dwz-compressed Debian debug file: `symbolize`,
llvm-symbolizer-14 and eu-addr2line (elfutils), neither of which is right
everywhere on dwz input (docs/symbolizer.md, "dwz on Debian's libbfd").

usage: compare_dwz.py SYMBOLIZE BINARY DEBUGFILE [--n N] [--seed S] [--show K]
                      [--min-llvm PCT] [--min-eu-depth PCT]

Addresses: uniform offsets inside random sized FUNC symbols of DEBUGFILE's
symbol table.  Every address is classified by how our frames compare with
each tool's (see classify()).  The assertions are per class, against the tool
that the DIEs show right for that class:
  - llvm-symbolizer: identical frames (depth, names, file, line, column) on
    every address except where llvm prints no function name for a frame (its
    14 cannot read names from the dwz supplementary file): >= --min-llvm %.
  - eu-addr2line: our inline depth >= eu's on every address (eu drops
    inlined_subroutines, never invents them), and wherever the depths agree,
    identical frames: >= --min-eu-depth %.
Prints one summary line per oracle (`ok`/`FAIL` protocol) and the classes."""
import json, os, random, re, subprocess, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_llvm  # noqa: E402  (shared address sampling)

def sized_funcs(obj):
    return compare_llvm.funcs(obj)[0]

def frame(func, file, line, col):
    return (func if func and func != "??" else None, file or None, line or None, col or None)

def run_llvm(binary, text):
    out = subprocess.run(["llvm-symbolizer-14", "--obj=" + binary, "--output-style=JSON", "--inlining"],
                         input=text, capture_output=True, text=True, check=True).stdout
    res = []
    for l in out.splitlines():
        if not l.strip():
            continue
        fr = [frame(s["FunctionName"], s["FileName"], s["Line"], s["Column"])
              for s in json.loads(l).get("Symbol", [])]
        res.append([] if fr == [(None, None, None, None)] else fr)
    return res

def run_eu(binary, text):
    out = subprocess.run(["eu-addr2line", "-a", "-i", "-f", "-e", binary], input=text,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    res, i = [], 0
    while i < len(out):
        if not re.fullmatch(r"0x[0-9a-f]+", out[i]):
            raise SystemExit(f"FAIL compare_dwz: unexpected eu-addr2line line {out[i]!r}")
        i += 1
        fr = []
        while i + 1 < len(out) + 1 and i < len(out) and not re.fullmatch(r"0x[0-9a-f]+", out[i]):
            func, loc = out[i], out[i + 1]
            i += 2
            m = re.fullmatch(r"(.*?):(\d+)(?::(\d+))?", loc)
            file, line, col = (m.group(1), int(m.group(2)), int(m.group(3) or 0)) if m else (loc, 0, 0)
            fr.append(frame(func, None if file == "??" else file, line, col))
        res.append([] if fr == [(None, None, None, None)] else fr)
    return res

def run_ours(symbolize, binary, text):
    p = subprocess.run([symbolize, "-e", binary, "--json", "--inlines", "--verbose", "--no-cache"],
                       input=text, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"FAIL compare_dwz: symbolize exited {p.returncode}: {p.stderr.strip()[:200]}")
    res = []
    for l in p.stdout.splitlines():
        if l.strip():
            fr = json.loads(l)["frames"]
            res.append(([frame(f["function"], f["file"], f["line"], f["column"]) for f in fr],
                        bool(fr) and fr[-1]["from_symtab"]))
    return res

FIELDS = ("function", "file", "line", "column")
CLONE = re.compile(r"(\.(cold|part|isra|constprop|lto_priv)(\.\d+)?)+$")

def eu_name(name):
    """eu-addr2line prints raw symbol names where it has no DWARF function; we
    report a GCC clone (`.lto_priv.0`, `.cold`, `.part.1`) as its source function."""
    return CLONE.sub("", name) if name else name

def diff(ours, theirs):
    """None when identical, else a short class name."""
    if ours == theirs:
        return None
    if len(ours) != len(theirs):
        return "depth ours>theirs" if len(ours) > len(theirs) else "depth ours<theirs"
    for k, (o, t) in enumerate(zip(ours, theirs)):
        pos = "inlined" if k < len(ours) - 1 else "outermost"
        for n, field in enumerate(FIELDS):
            if o[n] != t[n]:
                if n == 0 and t[0] is None:
                    return f"{pos} function: theirs ??"
                return f"{pos} {field}"
    return "other"

def llvm_blind(ours, from_symtab, llvm):
    """Frames llvm-symbolizer 14 cannot name on these files, for reasons the
    DIEs show (docs/symbolizer.md): a DW_AT_name in DW_FORM_GNU_strp_alt (the
    string lives in the dwz supplementary file), and functions without a
    concrete DIE whose only name is in the debug file's .symtab (llvm reads the
    stripped binary's symbols only).  Returns the class, or None when llvm's
    answer is complete."""
    if not llvm and len(ours) == 1 and from_symtab and ours[0][1] is None:
        return "llvm: no answer; symtab-only function without line info"
    if len(llvm) != len(ours) or all(f[0] is not None for f in llvm):
        return None
    masked = [(l[0] if l[0] is not None else o[0],) + l[1:] for o, l in zip(ours, llvm)]
    if masked != ours or any(o[0] is None for o in ours):
        return None
    if llvm[-1][0] is None and from_symtab:
        return "llvm: ?? outermost; no concrete DIE (name from .symtab)"
    return "llvm: ?? name; DW_AT_name in DW_FORM_GNU_strp_alt"

def show(fr):
    return " <- ".join(f"{f[0] or '??'} {(f[1] or '??').split('/')[-1]}:{f[2] or 0}:{f[3] or 0}" for f in fr) or "(none)"

def main():
    args = sys.argv[1:]
    symbolize, binary, debug = args[0], args[1], args[2]
    opts = dict(n=10000, seed=7, show=2, min_pct=99.9)
    i = 3
    while i < len(args):
        k = args[i][2:].replace("-", "_"); opts[k] = type(opts[k])(args[i + 1]); i += 2
    syms = sized_funcs(debug)
    if not syms:
        print(f"FAIL compare_dwz: no sized FUNC symbols in {debug}"); return 1
    rnd = random.Random(opts["seed"])
    addrs = []
    for _ in range(opts["n"]):
        v, s = syms[rnd.randrange(len(syms))]
        addrs.append(v + rnd.randrange(s))
    text = "".join("0x%x\n" % a for a in addrs)
    O, L, E = run_ours(symbolize, binary, text), run_llvm(binary, text), run_eu(binary, text)
    if not (len(O) == len(L) == len(E) == len(addrs)):
        print(f"FAIL compare_dwz: {len(O)}/{len(L)}/{len(E)} results for {len(addrs)} addresses"); return 1
    classes, examples = {}, {}
    llvm_ok = blind = blind_checked = blind_ok = eu_deeper = eu_eq = eu_eq_ok = 0
    for a, (o, from_symtab), l, e in zip(addrs, O, L, E):
        e = [(eu_name(f[0]),) + f[1:] for f in e]
        dl, de = diff(o, l), diff([(eu_name(f[0]),) + f[1:] for f in o], e)
        why_blind = llvm_blind(o, from_symtab, l) if dl else None
        key = (why_blind or dl or "=", de or "=")
        llvm_ok += dl is None or why_blind is not None
        eu_deeper += len(e) > len(o)
        if len(e) == len(o):
            eu_eq += 1
            # eu extends the last line row of a sequence past its end_sequence
            # (code without line info, like crt1.o's _start): llvm and we show none
            past_end = (de == "outermost file" and o[-1][1] is None
                        and (not l or l[-1][1] is None))
            if past_end:
                de = "line past end_sequence"
                key = (key[0], de)
            eu_eq_ok += de is None or past_end
        classes[key] = classes.get(key, 0) + 1
        examples.setdefault(key, []).append((a, o, l, e))
        if why_blind:
            # names llvm cannot show: eu-addr2line's where it has the same frames
            blind += 1
            if len(e) == len(o) and all(x[1:] == y[1:] for x, y in zip(e, o)):
                blind_checked += 1
                blind_ok += de is None
    obj = binary.split("/")[-1]
    print(f"# {obj}: {len(addrs)} addresses; classes (ours vs llvm-symbolizer, ours vs eu-addr2line):")
    for key, cnt in sorted(classes.items(), key=lambda kv: -kv[1]):
        print(f"#   {cnt:6d}  {key[0]:55s} | eu: {key[1]}")
        if key != ("=", "="):
            for a, o, l, e in examples[key][:opts["show"]]:
                print(f"#       0x{a:x}\n#         ours {show(o)}\n#         llvm {show(l)}\n#         eu   {show(e)}")
    rc = 0
    def verdict(name, good, total, extra=""):
        nonlocal rc
        pct = 100.0 * good / max(total, 1)
        msg = f"{good}/{total} ({pct:.3f}%){extra}"
        if total and pct >= opts["min_pct"] and not (extra and eu_deeper):
            print(f"ok {name} {obj}: {msg}")
        else:
            print(f"FAIL {name} {obj}: {msg}, want >= {opts['min_pct']}%"); rc = 1
    verdict("compare_dwz_llvm", llvm_ok, len(addrs),
            f" identical to llvm-symbolizer, {blind} of them where llvm prints ?? for a name")
    verdict("compare_dwz_eu_names", blind_ok, blind_checked,
            " names llvm cannot show equal eu-addr2line's where eu has the same frames")
    verdict("compare_dwz_eu", eu_eq_ok, eu_eq,
            f" identical to eu-addr2line where inline depths agree; "
            f"eu shows more frames on {eu_deeper}, fewer on {len(addrs) - eu_eq - eu_deeper}")
    return rc

if __name__ == "__main__":
    sys.exit(main())
