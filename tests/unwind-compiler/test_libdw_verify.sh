#!/usr/bin/env bash
# unwind-compile --verify: every row against libdw's dwarf_cfi_addrframe.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/unwind-compiler/objects.sh"
for obj in "${UNWIND_OBJECTS[@]}"; do
	name="libdw-verify $(basename "$obj")"
	[[ -f $obj ]] || { skip "$name" "$obj not present"; continue; }
	if out=$("$BIN/unwind-compile" --verify "$obj" 2>&1); then
		ok "$name"; echo "# $out"
	else
		fail "$name" "$(echo "$out" | tail -3 | tr '\n' ' ')"
	fi
done
finish
