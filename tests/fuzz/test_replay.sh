#!/usr/bin/env bash
# Every fuzz target (tests/fuzz/fuzz_<name>.c) over the seed corpus its
# tests/fuzz/seeds_<name>.sh makes, through replay_<name>: plain, and under
# ASan/UBSan in CI.  `make fuzz FUZZ=<name>` runs libFuzzer for real.
. "$TOP/tests/lib/check.sh"
scratch
for src in "$TOP"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c); name=${name#fuzz_}
	if [[ ! -x $TOP/tests/fuzz/seeds_$name.sh ]]; then
		fail "fuzz_${name}_seeds" "tests/fuzz/seeds_$name.sh is missing"
		continue
	fi
	FIXTURES=$FIXTURES "$TOP/tests/fuzz/seeds_$name.sh" "$SCRATCH/$name" >/dev/null
	n=$(ls "$SCRATCH/$name" | wc -l)
	if (( n == 0 )); then fail "fuzz_${name}_corpus_replay" "no seeds"; continue; fi
	check "fuzz_${name}_corpus_replay" "$TOP/$BUILD/fuzz/replay_$name" "$SCRATCH/$name"/*
done
finish
