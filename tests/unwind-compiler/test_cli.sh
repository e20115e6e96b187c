#!/usr/bin/env bash
# unwind-compile's command line: compile, dump (ELF and table), stats, and
# the rows the odd-CFI fixture must produce (checked against the addresses
# nm gives for its hand-written functions).
. "$TOP/tests/lib/check.sh"
scratch
U="$BIN/unwind-compile"
ODD="$FIXTURES/unwind/odd-cfi"
LIBC=/usr/lib/x86_64-linux-gnu/libc.so.6

check "cli --help" "$U" --help
if "$U" 2>/dev/null; then fail "cli no-args" "exit 0 without input"; else ok "cli no-args"; fi
if "$U" "$LIBC" 2>/dev/null; then fail "cli needs -o" "compiled without -o"; else ok "cli needs -o"; fi

check "cli compile libc" "$U" "$LIBC" -o "$SCRATCH/libc.unw"
"$U" --dump "$LIBC" >"$SCRATCH/elf.dump"
"$U" --dump "$SCRATCH/libc.unw" >"$SCRATCH/table.dump"
if cmp -s "$SCRATCH/elf.dump" "$SCRATCH/table.dump" && [[ -s $SCRATCH/elf.dump ]]; then
	ok "cli dump table file equals dump of ELF"
else
	fail "cli dump table file equals dump of ELF" "dumps differ"
fi
size=$(stat -c %s "$SCRATCH/libc.unw")
stats=$("$U" --stats "$LIBC")
if python3 - "$stats" "$size" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); size = int(sys.argv[2])
for k in ("cfi_rows", "table_bytes", "entries", "rules", "compile_ms", "build_id", "fdes"):
    assert k in s, k
assert s["table_bytes"] == size, (s["table_bytes"], size)
assert s["cfi_rows"] > 10000 and s["entries"] > 0 and 0 < s["rules"] <= 4096
PY
then ok "cli stats json"; else fail "cli stats json" "$stats"; fi
# The build-ID in the stats is the one readelf reads from the note.
want=$(readelf -n "$LIBC" | awk '/Build ID/ {print $3}')
if [[ $stats == *"\"build_id\":\"$want\""* ]]; then ok "cli stats build-id"; else fail "cli stats build-id" "want $want in $stats"; fi

# .debug_frame compressed with zlib or zstd gives the same table.
DFO="$FIXTURES/unwind/debug-frame-only"
"$U" --dump "$DFO" >"$SCRATCH/dfo.dump"
for z in zlib zstd; do
	if ! objcopy --compress-debug-sections=$z "$DFO" "$SCRATCH/dfo-$z" 2>"$SCRATCH/objcopy.err"; then
		skip "compressed .debug_frame ($z)" "objcopy cannot: $(head -1 "$SCRATCH/objcopy.err")"
		continue
	fi
	if readelf -SW "$SCRATCH/dfo-$z" | grep -q 'debug_frame.* [A-Z]*C[A-Z]* ' &&
	   "$U" --dump "$SCRATCH/dfo-$z" | cmp -s - "$SCRATCH/dfo.dump"; then
		ok "compressed .debug_frame ($z)"
	else
		fail "compressed .debug_frame ($z)" "not compressed, or the table differs"
	fi
done

# Without section headers (sstrip'ed), .eh_frame is found through
# PT_GNU_EH_FRAME and .eh_frame_hdr: the same table.
for obj in "$FIXTURES/unwind/deep-O2" "$LIBC"; do
	python3 - "$obj" "$SCRATCH/nosh" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<Q", d, 0x28, 0)           # e_shoff
struct.pack_into("<HHH", d, 0x3a, 64, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
open(sys.argv[2], "wb").write(d)
PY
	if [[ -n $(readelf -SW "$SCRATCH/nosh" 2>/dev/null | grep eh_frame) ]]; then
		fail "no section headers $(basename "$obj")" "headers still there"
	elif "$U" --dump "$SCRATCH/nosh" | cmp -s - <("$U" --dump "$obj"); then
		ok "no section headers $(basename "$obj")"
	else
		fail "no section headers $(basename "$obj")" "table differs from the original's"
	fi
done

# Expected rows of the hand-written CFI, by symbol address.
"$U" --dump "$ODD" >"$SCRATCH/odd.dump"
addr() { printf '0x%x' "0x$(nm "$ODD" | awk -v s="$1" '$3 == s {print $1}')"; }
row()  { awk -v a="$1" -F': ' '$1 == a {sub(/^[^:]*: /, ""); print}' "$SCRATCH/odd.dump"; }
expect_row() { # NAME ADDRESS EXPECTED
	local got; got=$(row "$2")
	if [[ $got == "$3" ]]; then ok "odd-cfi $1"; else fail "odd-cfi $1" "at $2 want '$3', got '$got'"; fi
}
expect_row "end of stack" "$(addr end_of_stack)" "CFA=RSP+8: RIP=undefined"
expect_row "signal frame" "$(addr my_restore_rt)" "CFA=SIGNAL"
expect_row "signal frame with a foreign layout" "$(addr bad_restore_rt)" "UNSUPPORTED(signal-layout)"
expect_row "code without CFI ends the previous row" "$(addr no_cfi)" "END"
expect_row "realigned entry" "$(addr realigned)" "CFA=RSP+8: RIP=[CFA-8]"
s=$(( $(addr ra_in_rdi) + 1 )); expect_row "return address in rdi" "$(printf 0x%x $s)" "CFA=RSP: RIP=RDI"
for pat in 'CFA=R13\+100016: RBP=\[CFA-16\]: RIP=\[CFA-8\]' 'CFA=PLT\(RSP\+8,11\): RIP=\[CFA-8\]' \
	   'CFA=R10: RIP=\[CFA-8\]' 'CFA=\[RBP-8\]: RBP=\[CFA-16\]: RIP=\[CFA-8\]' \
	   'CFA=\[RSP\+16\]\+8: RBP=\[CFA-16\]: RIP=\[CFA-8\]' 'UNSUPPORTED\(cfa-expression\)' \
	   'UNSUPPORTED\(offset-range\)' 'UNSUPPORTED\(rsp-rule\)' 'UNSUPPORTED\(rbp-rule\)' \
	   'UNSUPPORTED\(ra-rule\)'; do
	if grep -Eq ": $pat\$" "$SCRATCH/odd.dump"; then ok "odd-cfi row $pat"; else fail "odd-cfi row $pat" "missing"; fi
done
# Overlapping FDEs (hand-written): the nested one wins, the rest of the
# outer one is refused, not guessed.  (libdw and llvm-dwarfdump cannot serve
# as oracles here: libdw finds no row next to overlapping FDEs, llvm lists
# both.)
OV="$FIXTURES/unwind/overlap-cfi"
"$U" --dump "$OV" >"$SCRATCH/odd.dump"
o=$(( 0x$(nm "$OV" | awk '$3 == "outer_fde" {print $1}') ))
expect_row "overlap: outer entry" "$(printf 0x%x $o)" "CFA=RSP+8: RIP=[CFA-8]"
expect_row "overlap: nested FDE wins" "$(printf 0x%x $((o + 2)))" "CFA=RSP+32: RIP=[CFA-8]"
expect_row "overlap: rest of the outer FDE" "$(printf 0x%x $((o + 5)))" "UNSUPPORTED(overlapping-fde)"
expect_row "overlap: end" "$(printf 0x%x $((o + 9)))" "END"

# Alignment padding costs no entry: every END shorter than 16 bytes covers
# real code, by objdump's reading of the bytes (glibc's __clone has such a
# hole in its CFI; NOP padding never gets an END).
if python3 - "$SCRATCH/elf.dump" "$LIBC" <<'PY'
import subprocess, sys
rows = [l.rstrip("\n").split(": ", 1) for l in open(sys.argv[1])]
short = [(int(pc, 16), int(npc, 16)) for (pc, text), (npc, _) in zip(rows, rows[1:])
         if text == "END" and int(npc, 16) - int(pc, 16) < 16]
for start, end in short:
    out = subprocess.run(["objdump", "-d", "--start-address=%#x" % start, "--stop-address=%#x" % end,
                          sys.argv[2]], capture_output=True, text=True).stdout
    insns = [l.split("\t")[-1].split()[0] for l in out.splitlines() if l.count("\t") >= 2]
    if not insns or all(i in ("nop", "nopw", "nopl", "int3", "xchg", "data16", "cs") for i in insns):
        sys.exit("END at %#x covers only padding: %s" % (start, insns))
print("# %d short END rows, all over real code" % len(short))
PY
then
	ok "no END entries for alignment padding"
else
	fail "no END entries for alignment padding" "an END row over NOP padding"
fi
finish
