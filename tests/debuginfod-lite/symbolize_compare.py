#!/usr/bin/env python3
"""POST /symbolize against two oracles on N random addresses of one object.

usage: symbolize_compare.py URL BUILD_ID OBJ DEBUG_FILE N KIND SYMBOLIZE

Addresses: uniform offsets inside random sized FUNC symbols of DEBUG_FILE
(readelf -sW).  The server's frames must equal `symbolize -e OBJ --json
--inlines --kind KIND` exactly (same frame JSON), and agree with
`llvm-symbolizer-14 --output-style=JSON --inlining` on DEBUG_FILE in inline
depth, file, line and column of every frame (llvm is given address-1 for
return addresses: the adjustment is ours to make, once).  Prints one line per
check: `ok NAME` or `FAIL NAME: …`."""
import json, random, subprocess, sys, urllib.request

url, build_id, obj, dbg, n, kind, symbolize = sys.argv[1:8]
n = int(n)
rng = random.Random(4)
syms = []
for line in subprocess.run(["readelf", "-sW", dbg], capture_output=True, text=True,
                           check=True).stdout.splitlines():
    f = line.split()
    if len(f) >= 8 and f[3] in ("FUNC", "IFUNC") and f[6] != "UND":
        try:
            val, size = int(f[1], 16), int(f[2], 0)
        except ValueError:
            continue
        if val and size:
            syms.append((val, size))
syms = sorted(set(syms))
addrs = []
for _ in range(n):
    v, s = rng.choice(syms)
    addrs.append(v + rng.randrange(s) + (1 if kind == "return" else 0))
hexes = ["0x%x" % a for a in addrs]

body = json.dumps({"requests": [{"build_id": build_id, "addresses": hexes, "kind": kind}]})
req = urllib.request.Request(url + "/symbolize", data=body.encode(), method="POST",
                             headers={"Content-Type": "application/json"})
resp = json.load(urllib.request.urlopen(req, timeout=120))
res = resp["results"][0]
name = f"symbolize_{kind}_{n}"
if res.get("build_id") != build_id or "addresses" not in res or len(res["addresses"]) != n:
    print(f"FAIL {name}_shape: {json.dumps(res)[:300]}")
    sys.exit(0)
ours = res["addresses"]

cli = subprocess.run([symbolize, "-e", obj, "--json", "--inlines", "--kind", kind, "--no-cache"],
                     input="\n".join(hexes) + "\n", capture_output=True, text=True, check=True)
cli = [json.loads(l) for l in cli.stdout.splitlines()]
diff = [i for i in range(n) if cli[i] != ours[i]]
if diff:
    i = diff[0]
    print(f"FAIL {name}_equals_cli: {len(diff)}/{n} differ, first {hexes[i]}: "
          f"server {json.dumps(ours[i])[:300]} cli {json.dumps(cli[i])[:300]}")
else:
    print(f"ok {name}_equals_cli")

look = [a - 1 if kind == "return" else a for a in addrs]
llvm = subprocess.run(["llvm-symbolizer-14", "--obj=" + dbg, "--output-style=JSON", "--inlining"],
                      input="\n".join("0x%x" % a for a in look) + "\n", capture_output=True,
                      text=True, check=True).stdout
llvm = [json.loads(l) for l in llvm.splitlines() if l.strip()]
same = compared = 0
first_bad = None
for i in range(n):
    lf = [s for s in llvm[i]["Symbol"] if s.get("FunctionName") != "??" or s.get("Line")]
    if not lf or not lf[0].get("Line"):
        continue  # llvm knows nothing here: nothing to compare
    compared += 1
    mine = [(f["file"], f["line"] or 0, f["column"] or 0) for f in ours[i]["frames"]]
    theirs = [(s["FileName"], s["Line"], s["Column"]) for s in lf]
    if mine == theirs:
        same += 1
    elif first_bad is None:
        first_bad = (hexes[i], mine, theirs)
pct = 100.0 * same / max(compared, 1)
if compared >= n * 0.9 and pct >= 99.9:
    print(f"ok {name}_vs_llvm")
else:
    print(f"FAIL {name}_vs_llvm: {same}/{compared} identical ({pct:.2f}%), first {first_bad}")
