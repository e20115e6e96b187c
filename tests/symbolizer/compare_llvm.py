#!/usr/bin/env python3
"""Compare `symbolize --json --inlines` with llvm-symbolizer on random addresses.

usage: compare_llvm.py SYMBOLIZE OBJ [--n N] [--seed S] [--threshold PCT] [--show K]
                       [--obj-for-llvm FILE] [-- extra symbolize args]

Addresses: uniform offsets inside random sized FUNC symbols (readelf -sW).
Compared per address: number of frames (inline depth), and for every frame
file, line, column; function names of inlined frames exactly; the outermost
frame's name either equal, or llvm shows the ELF symbol-table name (it prefers
it over DWARF for the outermost frame: `fsetpos@@GLIBC_2.2.5`, `foo.cold`) of a
symbol covering the address, and our DWARF function is declared on llvm's
StartLine (the subprogram's DW_AT_decl_line, which llvm takes from DWARF).  Prints one summary line and the first
differences; exits 1 below the threshold."""
import json, random, re, subprocess, sys

def funcs(obj):
    out = subprocess.run(["readelf", "-sW", obj], capture_output=True, text=True, check=True).stdout
    syms, names = [], {}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8 or f[3] not in ("FUNC", "IFUNC") or f[6] == "UND":
            continue
        try:
            val, size = int(f[1], 16), int(f[2], 0)
        except ValueError:
            continue
        names.setdefault(f[7].split("@")[0], []).append((val, size))
        if size > 0 and val > 0:
            syms.append((val, size))
    # llvm shows the outermost name demangled: index the demangled names too
    raw = list(names)
    dem = subprocess.run(["c++filt"], input="\n".join(raw) + "\n", capture_output=True,
                         text=True, check=True).stdout.splitlines()
    for r, d in zip(raw, dem):
        d = strip_clone(d)
        if d != r:
            names.setdefault(d, []).extend(names[r])
    return sorted(set(syms)), names

def strip_clone(s):
    """GCC clone suffixes as c++filt (" [clone .cold]") and llvm (" (.cold)") print them."""
    s = re.sub(r"( \[clone \.[A-Za-z_0-9.]+\])+$", "", s)
    return re.sub(r"( \(\.[A-Za-z_0-9.]+\))+$", "", s)

def norm_name(s):
    return re.sub(r"\s+", "", s or "")

def llvm_style(name):
    """libiberty and llvm's demangler spell closure and unnamed types
    differently: `{lambda(long, long)#1}` / `'lambda'(long, long)`, #2 is
    `'lambda0'`; `{unnamed type#1}` / `'unnamed'`.  Rewrite ours in llvm's."""
    if not name or "{" not in name:
        return name
    out, i = [], 0
    while i < len(name):
        if name.startswith("{lambda(", i):
            j, depth = i + 7, 0
            while j < len(name):
                depth += {"(": 1, ")": -1}.get(name[j], 0)
                if depth == 0:
                    break
                j += 1
            m = re.match(r"\)#(\d+)\}", name[j:])
            if m:
                n = int(m.group(1))
                out.append("'lambda%s'%s)" % ("" if n == 1 else n - 2, name[i + 7:j]))
                i = j + len(m.group(0))
                continue
        m = re.match(r"\{unnamed type#(\d+)\}", name[i:])
        if m:
            n = int(m.group(1))
            out.append("'unnamed%s'" % ("" if n == 1 else n - 2))
            i += len(m.group(0))
            continue
        out.append(name[i]); i += 1
    return "".join(out)

def cxxfilt(names):
    if not names:
        return {}
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return dict(zip(names, out))

def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--"); extra = args[i + 1:]; args = args[:i]
    symbolize, obj = args[0], args[1]
    opts = dict(n=10000, seed=42, threshold=99.9, show=10, obj_for_llvm=obj, names=1)
    i = 2
    while i < len(args):
        k = args[i][2:].replace("-", "_"); v = args[i + 1]; i += 2
        opts[k] = type(opts[k])(v) if not isinstance(opts[k], str) else v
    syms, names = funcs(obj)
    if not syms:
        print(f"FAIL compare {obj}: no sized FUNC symbols"); return 1
    rnd = random.Random(opts["seed"])
    addrs = []
    for _ in range(opts["n"]):
        v, s = syms[rnd.randrange(len(syms))]
        addrs.append(v + rnd.randrange(s))
    text = "".join("0x%x\n" % a for a in addrs)
    llvm = subprocess.run(["llvm-symbolizer-14", "--obj=" + opts["obj_for_llvm"], "--output-style=JSON",
                           "--inlining"], input=text, capture_output=True, text=True, check=True).stdout
    ours = subprocess.run([symbolize, "-e", obj, "--json", "--inlines", "--verbose", "--no-cache"] + extra,
                          input=text, capture_output=True, text=True)
    if ours.returncode != 0:
        print(f"FAIL compare {obj}: symbolize exited {ours.returncode}: {ours.stderr.strip()[:200]}"); return 1
    L = [json.loads(l) for l in llvm.splitlines() if l.strip()]
    O = [json.loads(l) for l in ours.stdout.splitlines() if l.strip()]
    if len(L) != len(addrs) or len(O) != len(addrs):
        print(f"FAIL compare {obj}: {len(L)} llvm / {len(O)} ours results for {len(addrs)} addresses"); return 1
    # llvm 14's demangler gives up on some names (`enable_if<...>` return types
    # with `sr` expressions) and prints them mangled: c++filt is the referee.
    mangled = sorted({f["FunctionName"] for l in L for f in l.get("Symbol", [])
                      if f["FunctionName"].startswith("_Z")})
    filt = cxxfilt(mangled)
    same, classes, examples, accepted = 0, {}, [], {}
    for a, l, o in zip(addrs, L, O):
        lf = l.get("Symbol", [])
        if len(lf) == 1 and not lf[0]["FunctionName"] and not lf[0]["FileName"] and not lf[0]["Line"]:
            lf = []
        of = o["frames"]
        why = None
        if len(lf) != len(of):
            why = "inline depth"
        else:
            for k, (x, y) in enumerate(zip(lf, of)):
                if (x["FileName"] or None) != y["file"]:
                    why = "file"; break
                if (x["Line"] or None) != y["line"]:
                    why = "line"; break
                if (x["Column"] or None) != y["column"]:
                    why = "column"; break
                ln, on = norm_name(x["FunctionName"]), norm_name(llvm_style(y["function"]))
                if ln == on:
                    if on != norm_name(y["function"]):
                        accepted["demangler style"] = accepted.get("demangler style", 0) + 1
                    continue
                if x["FunctionName"] in filt and norm_name(filt[x["FunctionName"]]) == norm_name(y["function"]):
                    accepted["llvm left mangled"] = accepted.get("llvm left mangled", 0) + 1
                    continue
                if k < len(lf) - 1:
                    why = "inlined function name"; break
                # outermost: llvm shows the symtab name of the enclosing symbol
                base = strip_clone(x["FunctionName"].split("@")[0])
                if base not in names:
                    # llvm's spelling of a closure type: look the symbol up in ours
                    ours_base = strip_clone(llvm_style(y["function"]) or "")
                    if norm_name(ours_base) == norm_name(base):
                        base = y["function"]
                if base in names and any(v <= a < v + max(s, 1) for v, s in names[base]):
                    if y["from_symtab"] or (x["StartLine"] or None) == y["decl_line"]:
                        accepted["llvm symtab name"] = accepted.get("llvm symtab name", 0) + 1
                        continue
                why = "function name"; break
        if why is not None and "name" in why and not opts["names"]:
            classes["(not counted) " + why] = classes.get("(not counted) " + why, 0) + 1
            why = None
        if why is None:
            same += 1
        else:
            classes[why] = classes.get(why, 0) + 1
            if len(examples) < opts["show"]:
                examples.append((a, why, lf, of))
    pct = 100.0 * same / len(addrs)
    for a, why, lf, of in examples:
        print(f"# 0x{a:x} {why}:\n#   llvm: " +
              " <- ".join(f'{x["FunctionName"]} {x["FileName"]}:{x["Line"]}:{x["Column"]}' for x in lf) +
              "\n#   ours: " + " <- ".join(f'{y["function"]} {y["file"]}:{y["line"]}:{y["column"]}' for y in of))
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(classes.items()))
    if accepted:
        detail += ("; " if detail else "") + "frames accepted: " + ", ".join(
            f"{k} {v}" for k, v in sorted(accepted.items()))
    name = "compare_llvm " + obj.split("/")[-1]
    if not opts["names"]:
        name += " (file/line/column/depth)"
    msg = f"{same}/{len(addrs)} identical ({pct:.3f}%){'; ' + detail if detail else ''}"
    if pct >= opts["threshold"]:
        print(f"ok {name}: {msg}")
        return 0
    print(f"FAIL {name}: {msg} < {opts['threshold']}%")
    return 1

if __name__ == "__main__":
    sys.exit(main())
