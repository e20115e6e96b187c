#!/usr/bin/env bash
# symbolize against llvm-symbolizer (the correctness target: identical file,
# line, column and inline depth),
# zstd sections, separate debug files, dwz, JIT maps, bad input.
. "$TOP/tests/lib/check.sh"
scratch
S=$BIN/symbolize
FX=$FIXTURES/symbolizer
CMP="python3 $TOP/tests/symbolizer/compare_llvm.py $S"
export XDG_CACHE_HOME=$SCRATCH/cache

if ! command -v llvm-symbolizer-14 >/dev/null; then
	skip compare_llvm "llvm-symbolizer-14 not installed"
else
	# g++ C++ (cc-O2-dw5, cc-O3-dw4) includes template instantiations whose DIEs
	# have no DW_AT_linkage_name (docs/symbolizer.md, class 2).
	for f in c-O2-dw4 c-O3-dw5 c-clang-O2-dw5 cc-clang-O3-dw4 c-split cc-O2-dw5 cc-O3-dw4; do
		$CMP "$FX/$f" --show 3
	done
	# llvm-symbolizer 14 cannot read zstd sections: compare against the original.
	$CMP "$FX/c-O3-dw5.zstd" --obj-for-llvm "$FX/c-O3-dw5" --show 3
	LIBC_DBG=/usr/lib/debug/.build-id/93/ac61ec5a8eb1396f9fbd350e3169a558528a40.debug
	libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
	id=$(readelf -n "$libc" | awk '/Build ID/ {print $3}')
	dbg=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
	if [[ -r $dbg ]]; then
		$CMP "$dbg" --show 3
	else
		skip compare_llvm_libc "no libc6-dbg debug file $dbg"
	fi
fi

# dwz on Debian debug packages (docs/symbolizer.md "dwz on Debian's binutils"):
# libbfd (libbinutils-dbg) and as (binutils-x86-64-linux-gnu-dbg), both GCC LTO
# and dwz-compressed.  Each oracle is asserted on the classes the DIEs show it right.
dwz_compare() { # NAME BINARY PACKAGE
	local id dbg
	if ! command -v llvm-symbolizer-14 >/dev/null || ! command -v eu-addr2line >/dev/null; then
		skip "compare_dwz $1" "llvm-symbolizer-14 or eu-addr2line not installed"; return
	fi
	id=$(readelf -n "$2" 2>/dev/null | awk '/Build ID/ {print $3}')
	dbg=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
	if [[ -z $id || ! -r $dbg ]]; then
		skip "compare_dwz $1" "no debug file for $2 (package $3)"; return
	fi
	if ! readelf -SW "$dbg" 2>/dev/null | grep -q gnu_debugaltlink; then
		fail "compare_dwz $1" "$dbg has no .gnu_debugaltlink (not dwz-compressed)"; return
	fi
	python3 "$TOP/tests/symbolizer/compare_dwz.py" "$S" "$2" "$dbg" --n 10000 --show 1
}
dwz_compare libbfd "$(ls /usr/lib/x86_64-linux-gnu/libbfd-*.so 2>/dev/null | head -1)" libbinutils-dbg
dwz_compare as /usr/bin/x86_64-linux-gnu-as binutils-x86-64-linux-gnu-dbg

# zstd: byte-identical output before and after recompression.
seq 4096 4 12288 | awk '{printf "0x%x\n", $1}' > "$SCRATCH/addrs"
$S --no-cache -e "$FX/c-O3-dw5" --json --inlines < "$SCRATCH/addrs" > "$SCRATCH/plain.json"
$S --no-cache -e "$FX/c-O3-dw5.zstd" --json --inlines < "$SCRATCH/addrs" > "$SCRATCH/zstd.json"
if readelf -SW "$FX/c-O3-dw5.zstd" | grep -q ' C '; then
	if cmp -s "$SCRATCH/plain.json" "$SCRATCH/zstd.json" && grep -q '"line":[0-9]' "$SCRATCH/plain.json"; then
		ok zstd_identical
	else
		fail zstd_identical "output differs between plain and zstd-compressed DWARF"
	fi
else
	fail zstd_identical "objcopy did not compress the fixture"
fi

# Stripped binary: DWARF found through .gnu_debuglink, same answers.
$S --no-cache -e "$FX/c-stripped" --json --inlines < "$SCRATCH/addrs" > "$SCRATCH/strip.json"
$S --no-cache -e "$FX/c-O2-dw4" --json --inlines < "$SCRATCH/addrs" > "$SCRATCH/full.json"
if cmp -s "$SCRATCH/strip.json" "$SCRATCH/full.json"; then ok debuglink; else fail debuglink "differs"; fi

# Return addresses: address-1 looked up exactly once.
a=$(nm "$FX/c-O2-dw4" | awk '/ T work_a$/ {print $1}')
if [[ -n $a ]]; then
	n=$(printf '0x%x\n' $((0x$a + 1)) | $S --no-cache -e "$FX/c-O2-dw4" --kind return --json)
	l=$(printf '0x%x\n' $((0x$a)) | $S --no-cache -e "$FX/c-O2-dw4" --json)
	[[ ${n#*frames} == "${l#*frames}" ]] && ok return_address_minus_one || fail return_address_minus_one "$n vs $l"
fi

# dwz: .gnu_debugaltlink followed; inline names that live in the alt file resolve.
if [[ -r $FX/dwz/common.debug ]]; then
	w=$(nm "$FX/dwz1" | awk '/ T work1$/ {print $1}')
	out=$(printf '0x%x\n' $((0x$w + 4)) | $S --no-cache -e "$FX/dwz1" --json --inlines)
	eu=$(printf '0x%x\n' $((0x$w + 4)) | eu-addr2line -e "$FX/dwz1" -f -i | grep -v ':' | paste -sd' ')
	ours=$(echo "$out" | python3 -c 'import json,sys; print(" ".join(f["function"] or "??" for f in json.load(sys.stdin)["frames"]))')
	[[ -n $ours && $ours == "$eu" ]] && ok dwz_altlink || fail dwz_altlink "ours '$ours' eu-addr2line '$eu'"
fi

# Index round trip: written, reopened, same answers.
$S index "$FX/c-O3-dw5" -o "$SCRATCH/x.symz" && \
$S --index "$SCRATCH/x.symz" --json --inlines < "$SCRATCH/addrs" > "$SCRATCH/idx.json"
cmp -s "$SCRATCH/idx.json" "$SCRATCH/plain.json" && ok index_roundtrip || fail index_roundtrip "differs"

# Coprocess: one address written, its answer read back before the next one
# (no --unbuffered: output is flushed whenever input would block).
out=$(timeout 20 python3 -c '
import subprocess, sys
p = subprocess.Popen([sys.argv[1], "--no-cache", "-e", sys.argv[2], "--json"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
for a in ["0x1100", "0x1200"]:
    p.stdin.write(a + "\n"); p.stdin.flush()
    print(p.stdout.readline().split(",")[0])
p.stdin.close(); p.wait()' "$S" "$FX/c-O2-dw4" 2>&1 | paste -sd' ')
[[ $out == '{"address":"0x1100" {"address":"0x1200"' ]] && ok coprocess_flush || fail coprocess_flush "$out"

# Bad input: clear one-line errors, no crash.
head -c 3000 "$FX/c-O2-dw4" > "$SCRATCH/trunc"
out=$(echo 0x1000 | $S --no-cache -e "$SCRATCH/trunc" 2>&1); rc=$?
[[ $rc -ne 0 && $rc -lt 128 && $(echo "$out" | wc -l) -eq 1 ]] && ok bad_elf || fail bad_elf "rc=$rc $out"
head -c 1000 "$SCRATCH/x.symz" > "$SCRATCH/bad.symz"
out=$(echo 0x1000 | $S --index "$SCRATCH/bad.symz" 2>&1); rc=$?
[[ $rc -eq 1 ]] && ok bad_index || fail bad_index "rc=$rc $out"
out=$(echo zzz | $S --no-cache -e "$FX/c-O2-dw4" 2>&1); rc=$?
[[ $rc -eq 1 && $out == *"not a hex address"* ]] && ok bad_address || fail bad_address "rc=$rc $out"

# perf map: 0x or not, last writer wins, partial last line ignored.
printf '1000 100 old_fn\n0x1040 20 new fn\nzz bad line\n2000 10 tail' > "$SCRATCH/perf.map"
out=$(printf '1010\n1050\n1070\n2005\n' | $S --perf-map "$SCRATCH/perf.map" --json | python3 -c '
import json,sys; print(",".join(str(f["frames"][0]["function"]) if f["frames"] else "-" for f in map(json.loads, sys.stdin)))')
[[ $out == "old_fn,new fn,old_fn,-" ]] && ok perf_map_parse || fail perf_map_parse "$out"

# perf map: a partial last line that would overlap is ignored; later lines
# win over earlier ones in both directions (new inside old, new over old's start).
printf '3000 100 first\n3080 100 second\n2f80 100 third\n3200 10 whole\n3200 1' > "$SCRATCH/perf2.map"
out=$(printf '3010\n3090\n3170\n3205\n3190\n' | $S --perf-map "$SCRATCH/perf2.map" --json | python3 -c '
import json,sys; print(",".join(str(f["frames"][0]["function"]) if f["frames"] else "-" for f in map(json.loads, sys.stdin)))')
[[ $out == "third,second,second,whole,-" ]] && ok perf_map_last_writer_wins || fail perf_map_last_writer_wins "$out"

# jitdump: a small JIT writes jit-PID.dump (loads, debug info, a move, code
# reuse, a truncated tail); its addresses resolve to its function names.
if (cd "$SCRATCH" && "$FX/jitwriter" > expect); then
	dump=$(ls "$SCRATCH"/jit-*.dump)
	cut -d' ' -f1 "$SCRATCH/expect" | $S --jitdump "$dump" --json | python3 -c '
import json, sys
want = [l.rstrip("\n").split(" ", 1) for l in open(sys.argv[1])]
got = [json.loads(l) for l in sys.stdin]
bad = [(w, g["frames"]) for w, g in zip(want, got)
       if (g["frames"][0]["function"] if g["frames"] else "-") != w[1]]
print("ok jitdump_fixture" if len(got) == len(want) and not bad else "FAIL jitdump_fixture: %r" % bad[:3])' "$SCRATCH/expect"
else
	fail jitdump_fixture "the jitdump writer failed"
fi

# node --perf-basic-prof: JS function names resolve from its perf map.
if command -v node >/dev/null; then
	cat > "$SCRATCH/hot.js" <<'JS'
function fibHotLoop(n) { return n < 2 ? n : fibHotLoop(n - 1) + fibHotLoop(n - 2); }
let s = 0; for (let i = 0; i < 30; i++) s += fibHotLoop(22);
console.log(s);
JS
	(cd "$SCRATCH" && timeout 60 node --perf-basic-prof hot.js >/dev/null)
	map=$(ls /tmp/perf-*.map -t 2>/dev/null | head -1)
	line=$(grep -m1 'fibHotLoop' "$map" 2>/dev/null)
	if [[ -n $line ]]; then
		set -- $line
		got=$(printf '0x%x\n' $((0x$1 + 1)) | $S --perf-map "$map")
		[[ $got == *fibHotLoop* ]] && ok node_perf_map || fail node_perf_map "$got"
	else
		fail node_perf_map "no fibHotLoop in node's perf map ($map)"
	fi
else
	skip node_perf_map "node not installed"
fi
finish
