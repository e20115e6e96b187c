#!/usr/bin/env bash
# symbolize pprof on an aarch64 profile: Debian's arm64 libc with
# libc6-dbg:arm64 (tests/lib/arm64_root.sh), every location's inline chain
# (file and line of each frame) against llvm-symbolizer.
. "$TOP/tests/lib/check.sh"
scratch
if ! ROOT=$("$TOP/tests/lib/arm64_root.sh" 2>/dev/null); then
	skip arm64-pprof "cannot fetch Debian arm64 packages"; finish
fi
command -v llvm-symbolizer-14 >/dev/null || { skip arm64-pprof "llvm-symbolizer-14 not installed"; finish; }
MK=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
LIBC=$ROOT/lib/aarch64-linux-gnu/libc.so.6
ID=$(readelf -n "$LIBC" | awk '/Build ID/ {print $3}')
DBG=$ROOT/usr/lib/debug/.build-id/${ID:0:2}/${ID:2}.debug
[[ -r $DBG ]] || { skip arm64-pprof "no libc6-dbg:arm64 file for $ID"; finish; }
export XDG_CACHE_HOME=$SCRATCH/cache
python3 - "$DBG" >"$SCRATCH/stacks" <<'PY'
import random, subprocess, sys
random.seed(5)
out = subprocess.check_output(["nm", "-S", "--defined-only", sys.argv[1]], text=True)
fs = [(int(a, 16), int(s, 16)) for a, s, t, n in
      (l.split()[:4] for l in out.splitlines() if len(l.split()) == 4) if t in "tTwW" and int(s, 16) > 4]
for _ in range(400):
    print(" ".join("%x" % (a + 4 * random.randrange(s // 4)) for a, s in
                   (random.choice(fs) for _ in range(random.randint(1, 6)))), "=", random.randint(1, 9))
PY
"$MK" make "$SCRATCH/in.pb.gz" --mapping "$ID" "$LIBC" <"$SCRATCH/stacks" || { fail arm64-pprof "cannot write the profile"; finish; }
if ! "$BIN/symbolize" pprof "$SCRATCH/in.pb.gz" -o "$SCRATCH/out.pb.gz" --kind as-is \
	--debug-dir "$ROOT/usr/lib/debug" 2>"$SCRATCH/summary"; then
	fail arm64-pprof "$(cat "$SCRATCH/summary")"; finish
fi
echo "# $(cat "$SCRATCH/summary")"
out=$(python3 - "$TOP" "$SCRATCH/out.pb.gz" "$DBG" <<'PY'
import json, subprocess, sys
sys.path.insert(0, sys.argv[1] + "/contrib")
from pprof_decode import parse
p = parse(sys.argv[2])
locs = sorted(p["locations"].values(), key=lambda l: l.get(3, 0))
addrs = [l.get(3, 0) for l in locs]
llvm = subprocess.run(["llvm-symbolizer-14", "--obj=" + sys.argv[3], "--output-style=JSON", "--inlining"],
                      input="\n".join("0x%x" % a for a in addrs) + "\n", capture_output=True,
                      text=True, check=True).stdout
llvm = [json.loads(l) for l in llvm.splitlines() if l.strip()]
same = compared = 0
first = None
for l, j in zip(locs, llvm):
    theirs = [(s["FileName"], s["Line"]) for s in j["Symbol"] if s.get("Line")]
    if not theirs:
        continue
    compared += 1
    ours = [(p["functions"][ln.get(1, 0)]["filename"], ln.get(2, 0)) for ln in l["lines"]]
    if ours == theirs:
        same += 1
    elif first is None:
        first = ("0x%x" % l.get(3, 0), ours, theirs)
print("%d %d %s" % (same, compared, first))
PY
)
read -r same compared rest <<<"$out"
pct=$(python3 -c "print('%.2f' % (100.0 * $same / max($compared, 1)))")
if (( compared >= 1000 )) && python3 -c "import sys; sys.exit(0 if $same * 1000 >= $compared * 999 else 1)"; then
	ok "arm64 symbolize pprof equals llvm-symbolizer: $same of $compared locations ($pct%)"
else
	fail "arm64 symbolize pprof equals llvm-symbolizer" "$same of $compared ($pct%), first $rest"
fi
finish
