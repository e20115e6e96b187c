#!/usr/bin/env bash
# Hostile and corrupt inputs: a clear one-line error and a non-zero exit,
# or a valid table; never a crash, a hang or a partial output file.  The same
# files are the seed corpus the fuzz target replays (under ASan in CI).
. "$TOP/tests/lib/check.sh"
scratch
U="$BIN/unwind-compile"
python3 "$TOP/tests/unwind-compiler/corrupt.py" "$FIXTURES/unwind/odd-cfi" "$SCRATCH/bad" 60 >/dev/null
python3 "$TOP/tests/unwind-compiler/corrupt.py" /usr/lib/x86_64-linux-gnu/libc.so.6 "$SCRATCH/badlibc" 20 >/dev/null
mkdir -p "$SCRATCH/dir"
echo "hello" >"$SCRATCH/text"
errors=0 accepted=0
for f in "$SCRATCH"/bad/* "$SCRATCH"/badlibc/* "$SCRATCH/dir" "$SCRATCH/text" "$SCRATCH/missing"; do
	name="bad-input $(basename "$(dirname "$f")")/$(basename "$f")"
	rm -f "$SCRATCH/out.unw"
	timeout 20 "$U" "$f" -o "$SCRATCH/out.unw" 2>"$SCRATCH/err" >/dev/null
	rc=$?
	lines=$(wc -l <"$SCRATCH/err")
	if [[ $rc -eq 0 ]]; then
		# Accepted: the table must read back.
		if "$U" --dump "$SCRATCH/out.unw" >/dev/null 2>&1; then accepted=$((accepted + 1)); ok "$name"
		else fail "$name" "accepted, but the table does not read back"; fi
	elif [[ $rc -eq 1 && $lines -eq 1 ]] && grep -q '^unwind-compile: ' "$SCRATCH/err" && [[ ! -e $SCRATCH/out.unw ]]; then
		errors=$((errors + 1)); ok "$name"
	else
		fail "$name" "exit $rc, $lines stderr lines: $(head -c 300 "$SCRATCH/err")"
	fi
done
echo "# $errors rejected with an error, $accepted compiled"
# Targeted corruptions must be refused, each with its reason.
for v in cie-length-huge fde-cie-pointer-garbage cie-version-9 remember-state-deep \
	 restore-state-unbalanced unknown-opcode eh-frame-section-outside-file not-elf empty; do
	if out=$("$U" --stats "$SCRATCH/bad/$v" 2>&1); then fail "refuses $v" "accepted: $out"
	else ok "refuses $v"; echo "# $out"; fi
done
# The fuzz target's replay over the same corpus (ASan/UBSan catch what the
# exit codes do not).
check "fuzz corpus replay" "$TOP/$BUILD/fuzz/replay_unwind" "$SCRATCH"/bad/* "$SCRATCH"/badlibc/* \
	"$FIXTURES"/unwind/* /usr/lib/x86_64-linux-gnu/libc.so.6
finish
