#!/usr/bin/env bash
# MiniDebugInfo: a binary stripped of everything but .dynsym and an
# xz-compressed .symtab in .gnu_debugdata (made as Fedora makes it,
# tests/fixtures/symbolizer/minidebuginfo.sh).  Oracle: `nm -C` on the
# unstripped build (start, middle and last byte of every T and t symbol: the
# recipe keeps those, not weak ones),
# and gdb, which reads .gnu_debugdata itself.  Broken sections give one clear
# line and exit 1.
. "$TOP/tests/lib/check.sh"
scratch
S=$BIN/symbolize
FX=$FIXTURES/symbolizer
MINI=$FX/cc-O2-minidebuginfo FULL=$FX/cc-O2-dw5
export XDG_CACHE_HOME=$SCRATCH/cache
# Addresses and names of the unstripped build's functions (aliases left out).
nm -C -S --defined-only "$FULL" | python3 -c '
import sys
seen = {}
for l in sys.stdin:
    f = l.split(None, 3)
    if len(f) == 4 and f[2] in "Tt" and int(f[1], 16) > 0:  # what the recipe keeps
        s, z = int(f[0], 16), int(f[1], 16)
        for a in (s, s + z // 2, s + z - 1):
            seen.setdefault(a, set()).add(f[3].strip())
for a in sorted(seen):
    if len(seen[a]) == 1:
        print("0x%x\t%s" % (a, seen[a].pop()))
' >"$SCRATCH/want.tsv"
cut -f1 "$SCRATCH/want.tsv" | "$S" --no-cache -e "$MINI" --json >"$SCRATCH/got.json" 2>"$SCRATCH/err"
r=$(python3 - "$SCRATCH/want.tsv" "$SCRATCH/got.json" <<'PY'
import json, re, sys
# The symbolizer names a GCC clone (".cold", ".part.N", "[clone .isra.0]")
# after its source function (docs/symbolizer.md).
def source(n):
    n = re.sub(r' \[clone [^\]]*\]', '', n)
    return re.split(r'\.(?:cold|part\.|isra\.|constprop\.|lto_priv\.|localalias|specialized\.)', n)[0]
want = [(a, source(n)) for a, n in (l.rstrip('\n').split('\t', 1) for l in open(sys.argv[1]))]
got = [json.loads(l) for l in open(sys.argv[2])]
same = sum(1 for (a, n), g in zip(want, got)
           if g['frames'] and g['frames'][0]['function'] == n)
bad = [(a, n, g['frames'][0]['function'] if g['frames'] else None)
       for (a, n), g in zip(want, got) if not (g['frames'] and g['frames'][0]['function'] == n)]
print(json.dumps({'addresses': len(want), 'same': same, 'examples': bad[:4]}))
PY
)
echo "# nm: $r"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["addresses"] >= 30 and r["same"] >= 0.999 * r["addresses"]))' "$r" &&
	ok minidebuginfo_names_as_nm || fail minidebuginfo_names_as_nm "$r"
# Local functions are only in .gnu_debugdata: without it, they have no name.
local_fn=$(nm --defined-only "$FULL" | awk '$2 == "t" && $3 !~ /^(_|deregister|register|frame_dummy)/ { print "0x" $1; exit }')
if [[ -n $local_fn ]] && command -v gdb >/dev/null; then
	g=$(gdb -nx -batch -ex "info symbol $local_fn" "$MINI" 2>/dev/null | awk '{ print $1; exit }')
	ours=$(echo "$local_fn" | "$S" --no-cache -e "$MINI" --json | python3 -c 'import json,sys
f = json.load(sys.stdin)["frames"]; print(f[0]["linkage_name"] if f and f[0].get("linkage_name") else (f[0]["function"] if f else ""))' 2>/dev/null)
	ours_plain=$(echo "$local_fn" | "$S" --no-cache -e "$MINI" --json | python3 -c 'import json,sys
f = json.load(sys.stdin)["frames"]; print(f[0]["function"] if f else "")')
	[[ -n $g && ( $g == "$ours" || $(echo "$g" | c++filt) == "$ours_plain"* ) ]] && ok minidebuginfo_local_as_gdb ||
		fail minidebuginfo_local_as_gdb "$local_fn: gdb '$g', ours '$ours_plain'"
else
	skip minidebuginfo_local_as_gdb "no local function or no gdb"
fi
# Broken .gnu_debugdata: garbage, a truncated stream, an xz bomb, xz of a non-ELF.
objcopy --dump-section .gnu_debugdata="$SCRATCH/good.xz" "$MINI" "$SCRATCH/tmp.elf"
head -c 200 /dev/urandom >"$SCRATCH/garbage.xz"
head -c $(( $(stat -c %s "$SCRATCH/good.xz") / 2 )) "$SCRATCH/good.xz" >"$SCRATCH/trunc.xz"
head -c $((80 << 20)) /dev/zero | xz -0 -T1 >"$SCRATCH/bomb.xz"
echo "not an elf" | xz -T1 >"$SCRATCH/text.xz"
for c in garbage:"not an xz stream" trunc:"truncated xz stream" bomb:"more than 64 MiB" text:"does not hold an ELF"; do
	name=${c%%:*} want=${c#*:}
	objcopy --update-section .gnu_debugdata="$SCRATCH/$name.xz" "$MINI" "$SCRATCH/$name.elf"
	echo 0x1100 | timeout 20 "$S" --no-cache -e "$SCRATCH/$name.elf" >/dev/null 2>"$SCRATCH/err"; rc=$?
	if [[ $rc -eq 1 && $(wc -l <"$SCRATCH/err") -eq 1 ]] && grep -q "gnu_debugdata: .*$want" "$SCRATCH/err"; then
		ok "minidebuginfo_bad_$name"
	else
		fail "minidebuginfo_bad_$name" "rc=$rc $(head -c 200 "$SCRATCH/err")"
	fi
done
finish
