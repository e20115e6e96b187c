#!/usr/bin/env bash
# symbolize pprof against Google's pprof (built offline from Debian's
# golang-github-google-pprof-dev) and its own local symbolization
# (llvm-symbolizer), on a fixture and on libc with libc6-dbg.
. "$TOP/tests/lib/check.sh"
scratch
S=$BIN/symbolize
MK=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
FX=$FIXTURES/symbolizer
export XDG_CACHE_HOME=$SCRATCH/cache

. "$TOP/tests/lib/pprof.sh"
ensure_pprof

# Random stacks (leaf first) inside FUNC symbols of an object.
stacks() { # OBJ SEED
	python3 - "$1" "$2" <<'PY'
import random, subprocess, sys
random.seed(int(sys.argv[2]))
out = subprocess.check_output(['nm', '-S', '--defined-only', sys.argv[1]], text=True)
fs = [(int(a, 16), int(s, 16)) for a, s, t, n in
      (l.split()[:4] for l in out.splitlines() if len(l.split()) == 4) if t in 'tTwW' and int(s, 16) > 1]
for _ in range(400):
    st = []
    for _ in range(random.randint(1, 6)):
        a, s = random.choice(fs)
        st.append('%x' % (a + 1 + random.randrange(s - 1)))
    print(' '.join(st), '=', random.randint(1, 9))
PY
}
# The same stacks with every caller address minus one (what --kind position
# looks up), for pprof's as-is symbolization.
minus_one() {
	python3 -c '
import sys
for l in sys.stdin:
    t = l.split()
    n = t.index("=")
    print(" ".join([t[0]] + ["%x" % (int(a, 16) - 1) for a in t[1:n]] + t[n:]))'
}
# pprof -traces without function names (file:line, inline marks, values).
no_names() { sed -E 's/^( +[0-9.]+[a-z]*)? +[^ ]+( |$)/\1 /' "$1"; }

run_case() { # NAME OBJ NAMES(1: compare names) [PPROF_BINARY_PATH]
	local name=$1 obj=$2 names=$3 id
	id=$(readelf -n "$obj" 2>/dev/null | awk '/Build ID/ {print $3}')
	stacks "$obj" 7 > "$SCRATCH/$name.stacks"
	minus_one < "$SCRATCH/$name.stacks" > "$SCRATCH/$name.stacks-1"
	"$MK" make "$SCRATCH/$name.pb.gz" --mapping "$id" "$obj" < "$SCRATCH/$name.stacks" &&
	"$MK" make "$SCRATCH/$name-1.pb.gz" --mapping "$id" "$obj" < "$SCRATCH/$name.stacks-1" || {
		fail "pprof_$name" "cannot write the input profile"; return; }
	# ours, addresses as is, vs pprof -symbolize=local on the same profile
	if ! "$S" pprof "$SCRATCH/$name.pb.gz" -o "$SCRATCH/$name.asis.pb.gz" --kind as-is \
		2>"$SCRATCH/$name.summary"; then
		fail "pprof_$name" "$(cat "$SCRATCH/$name.summary")"; return
	fi
	grep -q ' 0 with missing debuginfo' "$SCRATCH/$name.summary" || {
		fail "pprof_$name" "$(cat "$SCRATCH/$name.summary")"; return; }
	"$S" pprof "$SCRATCH/$name.pb.gz" -o "$SCRATCH/$name.pos.pb.gz" 2>/dev/null
	if [[ ! -x $PPROF ]]; then
		skip "pprof_$name" "could not build pprof offline: $(tail -1 "$SCRATCH/gobuild" 2>/dev/null)"
		return
	fi
	local ppenv=(env PPROF_BINARY_PATH=${4:-/nonexistent} PPROF_TMPDIR=$SCRATCH HOME=$SCRATCH)
	local views=(-traces -top)
	[[ $names == 1 ]] || views=(-traces)
	for view in "${views[@]}"; do
		local v=${view#-}
		"${ppenv[@]}" "$PPROF" -symbolize=local "$view" -lines "$SCRATCH/$name.pb.gz" > "$SCRATCH/$name.$v.theirs" 2>&1
		"${ppenv[@]}" "$PPROF" -symbolize=none "$view" -lines "$SCRATCH/$name.asis.pb.gz" > "$SCRATCH/$name.$v.ours" 2>&1
		if [[ $names != 1 ]]; then
			no_names "$SCRATCH/$name.$v.theirs" > "$SCRATCH/$name.$v.theirs.nn"
			no_names "$SCRATCH/$name.$v.ours" > "$SCRATCH/$name.$v.ours.nn"
			echo "# $name: $(diff "$SCRATCH/$name.$v.theirs" "$SCRATCH/$name.$v.ours" | grep -c '^<') of $(wc -l < "$SCRATCH/$name.$v.theirs") lines name functions differently (llvm prefers ELF symbol names, docs/symbolizer.md)"
			mv "$SCRATCH/$name.$v.theirs.nn" "$SCRATCH/$name.$v.theirs"
			mv "$SCRATCH/$name.$v.ours.nn" "$SCRATCH/$name.$v.ours"
		fi
		if ! grep -q '\.[ch]:[0-9]' "$SCRATCH/$name.$v.theirs"; then
			fail "pprof_${v}_$name" "pprof printed no file:line: $(head -3 "$SCRATCH/$name.$v.theirs")"
		elif cmp -s "$SCRATCH/$name.$v.theirs" "$SCRATCH/$name.$v.ours"; then
			ok "pprof_${v}_$name"
		else
			fail "pprof_${v}_$name" "$(diff "$SCRATCH/$name.$v.theirs" "$SCRATCH/$name.$v.ours" | head -6 | tr '\n' '|')"
		fi
	done
	# --kind position (default): callers looked up at address-1, leaf as is.
	"${ppenv[@]}" "$PPROF" -symbolize=local -traces -lines "$SCRATCH/$name-1.pb.gz" > "$SCRATCH/$name.pos.theirs" 2>&1
	"${ppenv[@]}" "$PPROF" -symbolize=none -traces -lines "$SCRATCH/$name.pos.pb.gz" > "$SCRATCH/$name.pos.ours" 2>&1
	if [[ $names != 1 ]]; then
		no_names "$SCRATCH/$name.pos.theirs" > "$SCRATCH/x" && mv "$SCRATCH/x" "$SCRATCH/$name.pos.theirs"
		no_names "$SCRATCH/$name.pos.ours" > "$SCRATCH/x" && mv "$SCRATCH/x" "$SCRATCH/$name.pos.ours"
	fi
	if cmp -s "$SCRATCH/$name.pos.theirs" "$SCRATCH/$name.pos.ours"; then
		ok "pprof_return_addresses_$name"
	else
		fail "pprof_return_addresses_$name" "$(diff "$SCRATCH/$name.pos.theirs" "$SCRATCH/$name.pos.ours" | head -6 | tr '\n' '|')"
	fi
}

run_case c-O2-dw4 "$FX/c-O2-dw4" 1
run_case c-clang-O2-dw5 "$FX/c-clang-O2-dw5" 1
libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
lid=$(readelf -n "$libc" | awk '/Build ID/ {print $3}')
if [[ -r /usr/lib/debug/.build-id/${lid:0:2}/${lid:2}.debug ]]; then
	# pprof finds the debug file through PPROF_BINARY_PATH's <id[:2]>/<id[2:]>.debug layout.
	run_case libc "/usr/lib/debug/.build-id/${lid:0:2}/${lid:2}.debug" 0 /usr/lib/debug/.build-id
else
	skip pprof_libc "libc6-dbg not installed"
fi

# Already symbolized locations are kept; --force redoes them; missing
# debuginfo is reported and leaves locations alone.
P=$SCRATCH/c-O2-dw4
out=$("$S" pprof "$P.asis.pb.gz" -o "$SCRATCH/again.pb.gz" 2>&1)
[[ $out == *" 0 symbolized, "*" already symbolized (kept)"* ]] && ok pprof_keeps_symbolized || fail pprof_keeps_symbolized "$out"
out=$("$S" pprof "$P.asis.pb.gz" -o "$SCRATCH/again.pb.gz" --force 2>&1)
[[ $out == *" 0 already symbolized"* ]] && ok pprof_force || fail pprof_force "$out"
printf '1000 2000\n' | "$MK" make "$SCRATCH/missing.pb.gz" --mapping 0123456789abcdef0123 /nowhere/libgone.so
out=$("$S" pprof "$SCRATCH/missing.pb.gz" -o "$SCRATCH/missing.out.pb.gz" --debug-dir "$SCRATCH" 2>&1); rc=$?
[[ $rc -eq 0 && $out == *"2 with missing debuginfo"* && $out == *"missing debuginfo: 0123456789abcdef0123 (/nowhere/libgone.so, 2 locations)"* ]] &&
	cmp -s <(zcat "$SCRATCH/missing.pb.gz") <(zcat "$SCRATCH/missing.out.pb.gz") &&
	ok pprof_missing_reported || fail pprof_missing_reported "rc=$rc $out"

# Hostile profiles: one clear line, exit 1, no output file.
head -c 200 "$P.pb.gz" > "$SCRATCH/trunc.pb.gz"
printf '\x12\x05\x0a\x7f\x01' > "$SCRATCH/bad.pb"
printf '\x0a\x02\x08\x07\x32\x00' > "$SCRATCH/badstr.pb"
for f in trunc.pb.gz bad.pb badstr.pb; do
	rm -f "$SCRATCH/o.pb.gz"
	out=$("$S" pprof "$SCRATCH/$f" -o "$SCRATCH/o.pb.gz" 2>&1); rc=$?
	[[ $rc -eq 1 && $(echo "$out" | wc -l) -eq 1 && $out == "symbolize pprof: "* && ! -e $SCRATCH/o.pb.gz ]] &&
		ok "pprof_bad_input_$f" || fail "pprof_bad_input_$f" "rc=$rc $out"
done
# JIT frames: a mapping named "perf-map:<sha256>" holds runtime addresses,
# named from the snapshot with that SHA-256 under --perf-map-dir, flat
# (DIR/<sha256>) or as the server stores it (DIR/ab/cdef...).  The caller
# frame is a return address: 0x7f0000002004 is looked up at -1.
printf '7f0000001000 100 jit_alpha\n7f0000002000 80 LazyCompile:~beta app.js:3\n' > "$SCRATCH/perf.map"
sha=$(sha256sum "$SCRATCH/perf.map" | cut -d' ' -f1)
mkdir -p "$SCRATCH/maps-flat" "$SCRATCH/maps-srv/${sha:0:2}" "$SCRATCH/maps-bad"
cp "$SCRATCH/perf.map" "$SCRATCH/maps-flat/$sha"
cp "$SCRATCH/perf.map" "$SCRATCH/maps-srv/${sha:0:2}/${sha:2}"
printf '7f0000001000 100 not_this_one\n' > "$SCRATCH/maps-bad/$sha"
printf '7f0000001010 7f0000002004 = 2\n7f0000002010 = 3\n' |
	"$MK" make "$SCRATCH/jit.pb.gz" --mapping "" "perf-map:$sha"
for layout in flat srv; do
	out=$("$S" pprof "$SCRATCH/jit.pb.gz" -o "$SCRATCH/jit.$layout.pb.gz" \
		--perf-map-dir "$SCRATCH/maps-$layout" 2>&1); rc=$?
	names=$(zcat "$SCRATCH/jit.$layout.pb.gz" | grep -a -o 'jit_alpha\|LazyCompile:~beta app.js:3' | sort -u | tr '\n' '|')
	[[ $rc -eq 0 && $out == *"3 symbolized, "*"; 3 JIT frames named from perf maps"* &&
	   $names == "LazyCompile:~beta app.js:3|jit_alpha|" ]] &&
		ok "pprof_jit_perf_map_dir_$layout" || fail "pprof_jit_perf_map_dir_$layout" "rc=$rc names=$names $out"
done
if [[ -x ${PPROF:-} ]]; then
	"$PPROF" -traces "$SCRATCH/jit.flat.pb.gz" > "$SCRATCH/jit.traces" 2>&1
	# leaf first: jit_alpha called from beta (2 samples), beta alone (3)
	python3 - "$SCRATCH/jit.traces" <<'PY' && ok pprof_jit_traces || fail pprof_jit_traces "$(head -c 600 "$SCRATCH/jit.traces")"
import re, sys
blocks = [b.split('\n') for b in open(sys.argv[1]).read().split('-----------+-------------------------------------------------------')]
stacks = set()
for b in blocks:
    names = [re.sub(r'^\s*([0-9][0-9.]*[a-z]*\s+)?', '', l).strip() for l in b if l.strip() and not l.startswith(('File:', 'Type:', 'Time:', 'Duration:'))]
    if names:
        stacks.add(tuple(names))
want = {('jit_alpha', 'LazyCompile:~beta app.js:3'), ('LazyCompile:~beta app.js:3',)}
sys.exit(0 if want <= stacks else 1)
PY
fi
out=$("$S" pprof "$SCRATCH/jit.pb.gz" -o "$SCRATCH/jit.none.pb.gz" 2>&1); rc=$?
[[ $rc -eq 0 && $out == *" 0 symbolized, "*"; 0 JIT frames named"* && $out == *"missing perf map: $sha (3 locations): no --perf-map-dir given"* ]] &&
	ok pprof_jit_without_dir || fail pprof_jit_without_dir "rc=$rc $out"
out=$("$S" pprof "$SCRATCH/jit.pb.gz" -o "$SCRATCH/jit.bad.pb.gz" --perf-map-dir "$SCRATCH/maps-bad" 2>&1); rc=$?
[[ $rc -eq 0 && $out == *"; 0 JIT frames named"* && $out == *"missing perf map: $sha"*"not to its name"* ]] &&
	! zcat "$SCRATCH/jit.bad.pb.gz" | grep -a -q not_this_one &&
	ok pprof_jit_snapshot_checked || fail pprof_jit_snapshot_checked "rc=$rc $out"
finish
