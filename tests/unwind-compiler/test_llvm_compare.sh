#!/usr/bin/env bash
# Every row of our tables against llvm-dwarfdump-14's interpreted CFI.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/unwind-compiler/objects.sh"
command -v llvm-dwarfdump-14 >/dev/null || { skip llvm-compare "llvm-dwarfdump-14 not installed"; finish; }
for obj in "${UNWIND_OBJECTS[@]}"; do
	name="llvm-compare $(basename "$obj")"
	[[ -f $obj ]] || { skip "$name" "$obj not present"; continue; }
	check_shown "$name" python3 "$TOP/tests/unwind-compiler/compare_llvm.py" "$BIN/unwind-compile" "$obj"
done
finish
