#!/usr/bin/env bash
# aarch64 tables: every row of real Debian arm64 objects (glibc, libstdc++,
# lua5.4, python3.11, fetched by tests/lib/arm64_root.sh) and of a
# cross-assembled fixture with the odd shapes (PAC, signal trampoline, LR in
# a register, UNSUPPORTED) against llvm-dwarfdump-19 and libdw; bytes per row.
. "$TOP/tests/lib/check.sh"
command -v llvm-dwarfdump-19 >/dev/null || { skip arm64-tables "llvm-dwarfdump-19 not installed (llvm-19)"; finish; }
if ! ROOT=$("$TOP/tests/lib/arm64_root.sh" 2>"${TMPDIR:-/tmp}/arm64_root.$$.log"); then
	skip arm64-tables "cannot fetch Debian arm64 packages: $(tail -1 "${TMPDIR:-/tmp}/arm64_root.$$.log")"
	rm -f "${TMPDIR:-/tmp}/arm64_root.$$.log"; finish
fi
rm -f "${TMPDIR:-/tmp}/arm64_root.$$.log"
scratch
L=$ROOT/lib/aarch64-linux-gnu
OBJS=("$L/libc.so.6" "$L/ld-linux-aarch64.so.1" "$ROOT/usr/lib/aarch64-linux-gnu/libstdc++.so.6"
      "$L/libm.so.6" "$ROOT/usr/bin/lua5.4" "$ROOT/usr/bin/python3.11")
if command -v aarch64-linux-gnu-gcc >/dev/null; then
	aarch64-linux-gnu-gcc -o "$SCRATCH/a64_cfi" "$TOP/tests/fixtures/arm64/a64_cfi.S" &&
		OBJS+=("$SCRATCH/a64_cfi")
else
	skip arm64-fixture "aarch64-linux-gnu-gcc not installed"
fi
for obj in "${OBJS[@]}"; do
	name=$(basename "$obj")
	[[ -f $obj ]] || { skip "arm64 $name" "$obj not present"; continue; }
	check_shown "arm64 llvm-compare $name" \
		python3 "$TOP/tests/unwind-compiler/compare_llvm_a64.py" "$BIN/unwind-compile" "$obj"
	check_shown "arm64 libdw-verify $name" "$BIN/unwind-compile" --verify "$obj"
done

# Bytes per row of arm64 libc: the same target as x86-64 (<= 3.0).
stats=$("$BIN/unwind-compile" --stats "$L/libc.so.6")
echo "# $stats"
bpr=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bytes_per_row"])' "$stats")
if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 3.0 else 1)' "$bpr"; then
	ok "arm64 libc bytes per row ($bpr)"
else
	fail "arm64 libc bytes per row" "$bpr > 3.0"
fi

# The dump notation of the issue, and the table header's architecture.
if [[ -f $SCRATCH/a64_cfi ]]; then
	"$BIN/unwind-compile" --dump "$SCRATCH/a64_cfi" >"$SCRATCH/dump"
	for want in 'CFA=SP+32: X29=[CFA-32]: X30=[CFA-24]: PAC' 'CFA=X29+32: X29=[CFA-32]: X30=[CFA-24]: PAC' \
		    'CFA=SP: X30=X9' 'CFA=SP: X30=undefined' 'CFA=SIGNAL' 'UNSUPPORTED(signal-layout)' \
		    'UNSUPPORTED(ra-rule)' 'UNSUPPORTED(cfa-expression)' 'UNSUPPORTED(rsp-rule)'; do
		grep -qF ": $want" "$SCRATCH/dump" || fail "arm64 dump has '$want'" "$(head -40 "$SCRATCH/dump" | tr '\n' ' ')"
	done
	# A leaf: LR still live, nothing saved.
	leaf=$(nm "$SCRATCH/a64_cfi" | awk '$3 == "a64_leaf" {print $1}')
	grep -qx "0x$(printf %x $((16#$leaf))): CFA=SP" "$SCRATCH/dump" ||
		fail "arm64 leaf row" "no 'CFA=SP' row at a64_leaf (0x$leaf)"
	ok "arm64 dump notation"
	"$BIN/unwind-compile" "$SCRATCH/a64_cfi" -o "$SCRATCH/a64.unwind"
	arch=$(python3 -c 'import struct,sys; print(struct.unpack_from("<H", open(sys.argv[1],"rb").read(), 6)[0])' "$SCRATCH/a64.unwind")
	[[ $arch == 183 ]] && ok "arm64 table header names e_machine 183" || fail "arm64 table header arch" "$arch"
	cmp -s <("$BIN/unwind-compile" --dump "$SCRATCH/a64.unwind") "$SCRATCH/dump" &&
		ok "arm64 dump of the table file equals the dump of the object" ||
		fail "arm64 table dump" "differs from the object's dump"
fi

# Hostile aarch64 CFI (targeted corruptions and random flips of the
# fixture): a table or a one-line reason, never a crash or garbage.
if [[ -f $SCRATCH/a64_cfi ]]; then
	mkdir -p "$SCRATCH/bad"
	python3 "$TOP/tests/unwind-compiler/corrupt.py" "$SCRATCH/a64_cfi" "$SCRATCH/bad" 40 >/dev/null
	bad=0 n=0 refused=0
	for f in "$SCRATCH"/bad/*; do
		n=$((n + 1))
		"$BIN/unwind-compile" --dump "$f" >/dev/null 2>"$SCRATCH/err"; rc=$?
		if [[ $rc == 1 ]]; then
			refused=$((refused + 1))
			[[ $(wc -l <"$SCRATCH/err") == 1 ]] && grep -q "^unwind-compile: $f: ." "$SCRATCH/err" || bad=$((bad + 1))
		elif [[ $rc != 0 ]]; then
			bad=$((bad + 1))
		fi
	done
	(( bad == 0 )) && ok "arm64 hostile CFI: $n variants, $refused refused with one line, none crashed" ||
		fail "arm64 hostile CFI" "$bad of $n variants without a clean result or one-line error"
fi
finish
