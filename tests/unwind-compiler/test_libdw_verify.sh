#!/usr/bin/env bash
# unwind-compile --verify: every row against libdw's dwarf_cfi_addrframe.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/unwind-compiler/objects.sh"
for obj in "${UNWIND_OBJECTS[@]}"; do
	name="libdw-verify $(basename "$obj")"
	[[ -f $obj ]] || { skip "$name" "$obj not present"; continue; }
	check_shown "$name" "$BIN/unwind-compile" --verify "$obj"
done
finish
