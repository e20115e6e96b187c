#!/usr/bin/env bash
# Corrupt ELF/DWARF, indexes, profiles, perf maps and jitdumps: clear one-line
# errors, never a crash or hang.  (tests/fuzz/test_replay.sh replays every fuzz
# target's seeds; here the CLI meets the corrupt objects of fuzz_symbuild's.)
. "$TOP/tests/lib/check.sh"
scratch
S=$BIN/symbolize
export XDG_CACHE_HOME=$SCRATCH/cache
if ! FIXTURES=$FIXTURES TOP=$TOP "$TOP/tests/fuzz/seeds_symbuild.sh" "$SCRATCH/seeds_symbuild" \
	>"$SCRATCH/seedlog" 2>&1; then
	fail fuzz_seeds_symbuild "$(tail -2 "$SCRATCH/seedlog")"
fi
# The CLI on the corrupt ELF files: exit 0 with answers, or exit 1 with one line.
bad=0 n=0
for f in "$SCRATCH"/seeds_symbuild/*; do
	n=$((n + 1))
	out=$(echo 0x1100 | timeout 20 "$S" --no-cache -e "$f" 2>"$SCRATCH/err" >/dev/null); rc=$?
	if ! [[ $rc -eq 0 || ($rc -eq 1 && $(wc -l < "$SCRATCH/err") -eq 1) ]]; then
		bad=$((bad + 1)); echo "# $(basename "$f"): rc=$rc $(head -c 200 "$SCRATCH/err")"
	fi
done
[[ $bad -eq 0 ]] && ok "corrupt ELF/DWARF ($n files)" || fail "corrupt ELF/DWARF" "$bad of $n files"
bad=0 n=0
for f in "$SCRATCH"/seeds_pprof/*; do
	n=$((n + 1))
	rm -f "$SCRATCH/o.pb.gz"
	timeout 20 "$S" pprof "$f" -o "$SCRATCH/o.pb.gz" 2>"$SCRATCH/err" >/dev/null; rc=$?
	if [[ $rc -eq 1 && ( $(wc -l < "$SCRATCH/err") -ne 1 || -e $SCRATCH/o.pb.gz ) ]] || [[ $rc -ne 0 && $rc -ne 1 ]]; then
		bad=$((bad + 1)); echo "# $(basename "$f"): rc=$rc $(head -c 200 "$SCRATCH/err")"
	fi
done
[[ $bad -eq 0 ]] && ok "corrupt profiles ($n files)" || fail "corrupt profiles" "$bad of $n files"
finish
