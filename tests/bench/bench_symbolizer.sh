#!/usr/bin/env bash
# symbolize vs llvm-symbolizer and GNU addr2line: the same 100k glibc
# addresses (uniform inside FUNC symbols), with inline frames, median of 3.
# warm = index already built (cached); cold = index built in the same run.
set -u
: "${BUILD:=build}" "${TOP:=$(pwd)}"
S=$TOP/$BUILD/bin/symbolize
libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
id=$(readelf -n "$libc" | awk '/Build ID/ {print $3}')
D=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
[[ -r $D ]] || { echo "skip bench_symbolizer: no libc6-dbg ($D)"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
readelf -sW "$D" 2>/dev/null | awk '$4=="FUNC" && $3+0>0 {print $2, $3}' > "$tmp/syms"
python3 - "$tmp/syms" > "$tmp/addrs" <<'PY'
import random, sys
syms = [(int(a, 16), int(s, 0)) for a, s in (l.split() for l in open(sys.argv[1]))]
r = random.Random(42)
for _ in range(100000):
    a, s = syms[r.randrange(len(syms))]
    print("0x%x" % (a + r.randrange(s)))
PY
n=$(wc -l < "$tmp/addrs")
t() { local s e; s=$(date +%s.%N); "$@" < "$tmp/addrs" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
med() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
llvm=$(med $(t llvm-symbolizer-14 --obj="$D" --output-style=JSON --inlining) $(t llvm-symbolizer-14 --obj="$D" --output-style=JSON --inlining) $(t llvm-symbolizer-14 --obj="$D" --output-style=JSON --inlining))
gnu=$(med $(t addr2line -e "$D" -a -f -i -C) $(t addr2line -e "$D" -a -f -i -C) $(t addr2line -e "$D" -a -f -i -C))
cold=$(med $(t "$S" --no-cache -e "$D" --json --inlines) $(t "$S" --no-cache -e "$D" --json --inlines) $(t "$S" --no-cache -e "$D" --json --inlines))
"$S" index "$D" -o "$tmp/libc.symz"
warm=$(med $(t "$S" --index "$tmp/libc.symz" --json --inlines) $(t "$S" --index "$tmp/libc.symz" --json --inlines) $(t "$S" --index "$tmp/libc.symz" --json --inlines))
stats=$("$S" index "$D" --stats)
dw=$(echo "$stats" | sed 's/.*"dwarf_bytes":\([0-9]*\).*/\1/'); ix=$(stat -c %s "$tmp/libc.symz")
rate() { echo "$n / $1" | bc; }
echo "addresses: $n from $D"
printf '%-34s %10s addr/s  (%.3f s)\n' "llvm-symbolizer-14 JSON --inlining" "$(rate $llvm)" "$llvm"
printf '%-34s %10s addr/s  (%.3f s)\n' "GNU addr2line -afiC" "$(rate $gnu)" "$gnu"
printf '%-34s %10s addr/s  (%.3f s)  %.1fx llvm (target >= 10x)\n' "symbolize warm (index built)" "$(rate $warm)" "$warm" "$(echo "$llvm / $warm" | bc -l)"
printf '%-34s %10s addr/s  (%.3f s)  %.1fx llvm (target >= 2x)\n' "symbolize cold (incl. index build)" "$(rate $cold)" "$cold" "$(echo "$llvm / $cold" | bc -l)"
printf 'index %d bytes vs uncompressed DWARF %d bytes: 1/%.1f (target <= 1/5)\n' "$ix" "$dw" "$(echo "$dw / $ix" | bc -l)"
