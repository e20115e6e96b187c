#!/usr/bin/env bash
# The profile store: POST /profiles of an unsymbolized profile of the stripped
# fixture, debuginfo uploaded only afterwards, GET /profiles symbolized
# (checked against llvm-symbolizer on the unstripped fixture and with
# Google's pprof), labels, time ranges, merging, JIT perf maps, hostile
# bodies, authentication, restart, quota.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
TOOL=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
EXE=$FIX/crash
ID=$(build_id_of "$FIX/crash.stripped")
echo secret > "$SCRATCH/tokens"
AUTH=(-H 'Authorization: Bearer secret')
ARGS=(--data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --profile-max-size 100000 --no-watch)
dil_start S "${ARGS[@]}"

. "$TOP/tests/lib/pprof.sh"
ensure_pprof
pp() { env PPROF_BINARY_PATH=/nonexistent PPROF_TMPDIR="$SCRATCH" HOME="$SCRATCH" "$PPROF" -symbolize=none "$@" 2>&1; }

# Real addresses from the unstripped fixture: a leaf in inner_frame (where
# scale() is inlined), the return addresses after the calls to inner_frame
# and middle_frame.
eval "$(python3 - "$EXE" <<'PY'
import re, subprocess, sys
dis = subprocess.check_output(['objdump', '-d', '--no-show-raw-insn', sys.argv[1]], text=True)
fn, insns = None, {}
for l in dis.splitlines():
    m = re.match(r'^([0-9a-f]+) <(\w+)>:', l)
    if m: fn = m.group(2); insns[fn] = []; continue
    m = re.match(r'^\s+([0-9a-f]+):\s+(\S+)\s*(.*)', l)
    if m and fn: insns[fn].append((int(m.group(1), 16), m.group(2), m.group(3)))
def after_call(f, callee):
    ins = insns[f]
    for i, (a, op, arg) in enumerate(ins):
        if op == 'call' and '<%s>' % callee in arg: return ins[i + 1][0]
leaf = next(a for a, op, arg in insns['inner_frame'] if op == 'lea')
print('LEAF=%x RA_MIDDLE=%x RA_MAIN=%x MIDDLE_LEAF=%x' % (leaf, after_call('middle_frame', 'inner_frame'),
      after_call('main', 'middle_frame'), insns['middle_frame'][1][0]))
PY
)"
# What llvm-symbolizer says, as pprof -traces -lines prints it: "function file:line" innermost first.
expect_frames() { # ADDR... (leaf first; callers looked up at address-1)
	local first=1 a
	for a in "$@"; do
		[[ $first == 1 ]] && printf '0x%x\n' $((16#$a)) || printf '0x%x\n' $((16#$a - 1))
		first=0
	done | llvm-symbolizer-14 --obj="$EXE" --inlining --output-style=LLVM |
		awk 'NF == 0 { next } { if (fn == "") fn = $0; else { split($0, p, ":"); print fn " " p[1] ":" p[2]; fn = "" } }'
}
# The frames of the trace with value V in pprof -traces -lines output.
trace_frames() { # FILE VALUE
	awk -v v="$2" '/^-----------\+/ { if (hit) exit; inb = 1; next }
		inb && $1 == v { hit = 1; $1 = "" }
		hit && NF { sub(/^ +/, ""); sub(/ \(inline\)$/, ""); print }' "$1"
}
profile() { # OUT TIME_S LABEL... < stacks
	local out=$1 t=$2; shift 2
	local labels=() l
	for l in "$@"; do labels+=(--label "$l"); done
	"$TOOL" make "$out" --time "${t}000000000" --duration 10000000000 "${labels[@]}" \
		--mapping "$ID" /opt/app/crash
}
count() { curl -s "$S_URL/profiles/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["profiles"]))'; }
state_of() { curl -s "$S_URL/profiles/list?id=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["profiles"][0]["state"])'; }
wait_state() { # ID STATE
	local i
	for i in $(seq 300); do [[ $(state_of "$1") == "$2" ]] && return 0; sleep 0.1; done
	return 1
}

# 1. A profile of the stripped fixture before its debuginfo exists.
printf '%s %s %s = 90\n%s %s = 10\n' "$LEAF" "$RA_MIDDLE" "$RA_MAIN" "$MIDDLE_LEAF" "$RA_MAIN" |
	profile "$SCRATCH/p1.pb.gz" 1700000000 host=h1 pid=42
out=$(curl -s -w ' %{http_code}' "${AUTH[@]}" -H 'X-Profile-Label: env=ci' \
	--data-binary @"$SCRATCH/p1.pb.gz" "$S_URL/profiles")
P1=$(echo "${out% *}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
[[ ${out##* } == 201 && -n $P1 && $out == *'"host":"h1"'* && $out == *'"env":"ci"'* &&
   $out == *'"pid":"42"'* && $out == *"\"build_ids\":[\"$ID\"]"* ]] &&
	ok profiles_post || fail profiles_post "$out"
out=$(curl -s -w ' %{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/p1.pb.gz" "$S_URL/profiles")
[[ ${out##* } == 200 && $out == *'"duplicate":true'* && $out == *"\"id\":$P1,"* ]] &&
	ok profiles_post_duplicate || fail profiles_post_duplicate "$out"

wait_state "$P1" partial && ok profiles_missing_recorded ||
	fail profiles_missing_recorded "$(curl -s "$S_URL/profiles/list")"
curl -s -o "$SCRATCH/before.pb.gz" "$S_URL/profiles"
if [[ -x $PPROF ]]; then
	pp -traces -lines "$SCRATCH/before.pb.gz" > "$SCRATCH/before.txt"
	! grep -q inner_frame "$SCRATCH/before.txt" && grep -q 900ms "$SCRATCH/before.txt" &&
		ok profiles_unsymbolized_before_debuginfo ||
		fail profiles_unsymbolized_before_debuginfo "$(head -12 "$SCRATCH/before.txt")"
fi

# 2. The debuginfo arrives later: the profile is symbolized again.
code=$(http_code "${AUTH[@]}" -T "$FIX/crash.debug" "$S_URL/buildid/$ID/debuginfo")
[[ $code == 201 ]] || fail profiles_upload "HTTP $code"
wait_state "$P1" symbolized && ok profiles_resymbolized_after_upload ||
	fail profiles_resymbolized_after_upload "$(curl -s "$S_URL/profiles/list")"
curl -s -o "$SCRATCH/after.pb.gz" "$S_URL/profiles"
if [[ ! -x $PPROF ]]; then
	skip profiles_pprof "could not build pprof offline: $(tail -1 "$SCRATCH/gobuild" 2>/dev/null)"
else
	pp -traces -lines "$SCRATCH/after.pb.gz" > "$SCRATCH/after.txt"
	want=$(expect_frames "$LEAF" "$RA_MIDDLE" "$RA_MAIN")
	got=$(trace_frames "$SCRATCH/after.txt" 900ms)
	[[ -n $want && $want == "$got" && $want == scale* ]] && ok profiles_symbolized_like_llvm_inlines ||
		fail profiles_symbolized_like_llvm_inlines "want [$want] got [$got]"
	want=$(expect_frames "$MIDDLE_LEAF" "$RA_MAIN")
	got=$(trace_frames "$SCRATCH/after.txt" 100ms)
	[[ -n $want && $want == "$got" ]] && ok profiles_symbolized_like_llvm ||
		fail profiles_symbolized_like_llvm "want [$want] got [$got]"
	hot=$(expect_frames "$LEAF" | head -1 | cut -d' ' -f1)
	first=$(pp -top "$SCRATCH/after.pb.gz" | awk '/flat%/ { getline; print $6; exit }')
	[[ -n $hot && $first == "$hot" ]] && ok profiles_pprof_top_hot_first ||
		fail profiles_pprof_top_hot_first "first '$first', want '$hot'"
	curl -s -o "$SCRATCH/raw.pb.gz" "$S_URL/profiles?symbolize=0"
	! pp -traces "$SCRATCH/raw.pb.gz" | grep -q inner_frame && ok profiles_symbolize_0 ||
		fail profiles_symbolize_0 "names in an unsymbolized answer"
fi

# 3. A second profile: merge sums values; labels and time select.
printf '%s %s %s = 90\n' "$LEAF" "$RA_MIDDLE" "$RA_MAIN" |
	profile "$SCRATCH/p2.pb.gz" 1700000100 host=h1 pid=42
P2=$(curl -s "${AUTH[@]}" --data-binary @"$SCRATCH/p2.pb.gz" "$S_URL/profiles" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
printf '%s %s %s = 5\n' "$LEAF" "$RA_MIDDLE" "$RA_MAIN" |
	profile "$SCRATCH/p3.pb.gz" 1700000200 host=h2 pid=7
curl -s -o /dev/null "${AUTH[@]}" --data-binary @"$SCRATCH/p3.pb.gz" "$S_URL/profiles"
total() { # QUERY: the summed sample count of the answer
	curl -s -o "$SCRATCH/q.pb.gz" -w '%{http_code}' "$S_URL/profiles$1" | grep -q 200 || { echo none; return; }
	python3 - "$SCRATCH/q.pb.gz" <<'PY'
import gzip, sys
# Sum of the first value of every sample, read with a tiny protobuf walker.
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i
def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        if k & 7 == 0: v, i = varint(b, i); yield k >> 3, v
        elif k & 7 == 2: n, i = varint(b, i); yield k >> 3, b[i:i+n]; i += n
        else: raise SystemExit('wire type %d' % (k & 7))
b = gzip.decompress(open(sys.argv[1], 'rb').read())
tot = 0
for f, v in fields(b):
    if f != 2: continue
    for g, w in fields(v):
        if g == 2:
            if isinstance(w, bytes):
                tot += varint(w, 0)[0]
            else:
                tot += w
            break
print(tot)
PY
}
for i in $(seq 100); do [[ $(state_of "$P2") == symbolized ]] && break; sleep 0.1; done
t=$(total ""); [[ $t == 195 ]] && ok profiles_merge_all || fail profiles_merge_all "total $t, want 90+10+90+5"
t=$(total "?label=host=h1"); [[ $t == 190 ]] && ok profiles_merge_label || fail profiles_merge_label "total $t, want 190"
t=$(total "?label=host=h1&label=pid=7"); [[ $t == none ]] && ok profiles_label_and || fail profiles_label_and "got $t"
t=$(total "?from=1700000050&to=1700000150"); [[ $t == 90 ]] && ok profiles_time_range || fail profiles_time_range "total $t, want 90"
t=$(total "?from=1700000205"); [[ $t == 5 ]] && ok profiles_time_overlap || fail profiles_time_overlap "total $t, want 5 (profile 3 runs to +10 s)"
code=$(http_code "$S_URL/profiles?from=yesterday"); [[ $code == 400 ]] && ok profiles_bad_query || fail profiles_bad_query "HTTP $code"
if [[ -x $PPROF ]]; then
	curl -s -o "$SCRATCH/h1.pb.gz" "$S_URL/profiles?label=host=h1"
	pp -traces -lines "$SCRATCH/h1.pb.gz" | grep -q '^ *1.80s *scale ' && ok profiles_merge_pprof ||
		fail profiles_merge_pprof "$(pp -traces "$SCRATCH/h1.pb.gz" | head -12)"
fi

# 4. JIT: a perf map posted first, a profile whose mapping names it.
printf '7f0000001000 100 LazyCompile:*hotLoop /app/x.js:3\n7f0000002000 80 LazyCompile:*caller /app/x.js:9\n' > "$SCRATCH/perf.map"
out=$(curl -s -w ' %{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/perf.map" "$S_URL/perf-maps")
SHA=$(sha256sum "$SCRATCH/perf.map" | cut -d' ' -f1)
[[ ${out##* } == 201 && $out == *"\"mapping\":\"perf-map:$SHA\""* ]] && ok profiles_perf_map_post ||
	fail profiles_perf_map_post "$out"
RAW=$(sha256sum "$SCRATCH/p1.pb.gz" | cut -d' ' -f1)
[[ $(http_code "$S_URL/perf-maps/$SHA") == 200 && $(curl -s "$S_URL/perf-maps/$SHA" | sha256sum | cut -d' ' -f1) == "$SHA" &&
   $(http_code "$S_URL/perf-maps/$RAW") == 404 ]] && ok profiles_perf_map_get || fail profiles_perf_map_get "not served, or a profile served as a map"
printf '2:7f0000001010 2:7f0000002020 = 3\n' | "$TOOL" make "$SCRATCH/jit.pb.gz" --time 1700000300000000000 \
	--label host=jit --mapping "$ID" /opt/app/crash --mapping "" "perf-map:$SHA"
curl -s -o /dev/null "${AUTH[@]}" --data-binary @"$SCRATCH/jit.pb.gz" "$S_URL/profiles"
if [[ -x $PPROF ]]; then
	curl -s -o "$SCRATCH/jitout.pb.gz" "$S_URL/profiles?label=host=jit"
	got=$(pp -traces "$SCRATCH/jitout.pb.gz" | trace_frames /dev/stdin 30ms)
	[[ $got == $'LazyCompile:*hotLoop /app/x.js:3\nLazyCompile:*caller /app/x.js:9' ]] && ok profiles_jit_names ||
		fail profiles_jit_names "[$got]"
fi

# 5. Hostile bodies: 400 with one line, nothing stored.
n0=$(count)
printf 'hello, world' > "$SCRATCH/text"
head -c 60 "$SCRATCH/p1.pb.gz" > "$SCRATCH/trunc.gz"
printf '\x0a\x02\x08\x07\x32\x00' > "$SCRATCH/badstr"                      # string index 7
printf '\x12\xff\xff\xff\xff\x07' > "$SCRATCH/hugelen"                      # 2 GiB sample
printf '\x0a\x04\x08\x01\x10\x02\x12\x04\x08\x63\x10\x01\x32\x00\x32\x01a\x32\x01b' > "$SCRATCH/badloc"  # location 99
printf '\x0a\x04\x08\x01\x10\x02\x12\x06\x08\x01\x10\x01\x10\x01\x32\x00\x32\x01a\x32\x01b' > "$SCRATCH/values"  # 2 values, 1 type
for f in text trunc.gz badstr hugelen badloc values; do
	out=$(curl -s -w '\n%{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/$f" "$S_URL/profiles")
	code=${out##*$'\n'} msg=${out%$'\n'*}
	msg=${msg%$'\n'}
	[[ $code == 400 && $(printf '%s\n' "$msg" | wc -l) == 1 && -n $msg ]] && ok "profiles_hostile_$f" ||
		fail "profiles_hostile_$f" "HTTP $code: $msg"
done
head -c 150000 /dev/urandom > "$SCRATCH/big"
code=$(http_code "${AUTH[@]}" --data-binary @"$SCRATCH/big" "$S_URL/profiles")
[[ $code == 413 ]] && ok profiles_too_large || fail profiles_too_large "HTTP $code"
code=$(http_code --data-binary @"$SCRATCH/p1.pb.gz" "$S_URL/profiles")
[[ $code == 401 ]] && ok profiles_need_token || fail profiles_need_token "HTTP $code"
code=$(http_code -H 'Authorization: Bearer nope' --data-binary @"$SCRATCH/p2.pb.gz" "$S_URL/profiles")
[[ $code == 401 ]] && ok profiles_wrong_token || fail profiles_wrong_token "HTTP $code"
code=$(http_code "${AUTH[@]}" -H 'X-Profile-Label: novalue' --data-binary @"$SCRATCH/p2.pb.gz" "$S_URL/profiles")
[[ $code == 400 ]] && ok profiles_bad_label_header || fail profiles_bad_label_header "HTTP $code"
[[ $(count) == "$n0" ]] && ok profiles_hostile_nothing_stored || fail profiles_hostile_nothing_stored "$n0 -> $(count)"
m=$(metric "$S_URL" profiles_rejected_total); s=$(metric "$S_URL" profiles_stored_total)
[[ $m -ge 10 && $s == 4 ]] && ok profiles_metrics || fail profiles_metrics "rejected $m stored $s"

# 6. Restart: profiles and their symbolized copies survive.
stop_servers
dil_start S "${ARGS[@]}"
t=$(total "?label=host=h1")
[[ $(count) == "$n0" && $t == 190 && $(state_of "$P1") == symbolized ]] && ok profiles_restart ||
	fail profiles_restart "count $(count) (want $n0), total $t"

# 7. Without --token-file, loopback clients may post; a quota evicts the oldest.
stop_servers
dil_start Q --data "$SCRATCH/q" --profile-quota 1500 --no-watch
for f in p1 p2 p3 jit; do
	code=$(http_code --data-binary @"$SCRATCH/$f.pb.gz" "$Q_URL/profiles")
	[[ $code == 201 ]] || fail profiles_loopback_without_tokens "HTTP $code"
done
ok profiles_loopback_without_tokens
for i in $(seq 100); do
	ids=$(curl -s "$Q_URL/profiles/list" | python3 -c 'import json,sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)["profiles"]))')
	[[ $ids != "1 2 3 4" ]] && break
	sleep 0.1
done
bytes=$(curl -s "$Q_URL/profiles/list" | python3 -c 'import json,sys; print(sum(p["raw_size"]+p["symbolized_size"] for p in json.load(sys.stdin)["profiles"]))')
[[ $ids != "1 2 3 4" && $ids == *4 && $bytes -le 1500 ]] && ok profiles_quota_evicts_oldest ||
	fail profiles_quota_evicts_oldest "ids [$ids], $bytes bytes"
# 8. Names from a symbol table give way to DWARF: a profile symbolized while
# only a symtab-only debuginfo existed is symbolized again (file:line,
# inlines) when the real debuginfo arrives.  A copy of the fixture under a
# new build-ID keeps this apart from the checks above.
ID2=$(python3 - "$FIX/crash.debug" "$SCRATCH/crash2.debug" "$ID" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
old = bytes.fromhex(sys.argv[3]); new = bytes([old[0] ^ 0xff]) + old[1:]
assert data.count(old) == 1
open(sys.argv[2], "wb").write(data.replace(old, new))
print(new.hex())
PY
)
strip --strip-debug -o "$SCRATCH/crash2.symtab" "$SCRATCH/crash2.debug"
dil_start T --data "$SCRATCH/t" --token-file "$SCRATCH/tokens" --no-watch
code=$(http_code -H 'Authorization: Bearer secret' -T "$SCRATCH/crash2.symtab" "$T_URL/buildid/$ID2/debuginfo")
[[ $code == 201 ]] || fail profiles_symtab_upload "HTTP $code"
printf '%s %s %s = 90\n' "$LEAF" "$RA_MIDDLE" "$RA_MAIN" |
	"$TOOL" make "$SCRATCH/p8.pb.gz" --time 1700000000000000000 --duration 10000000000 \
		--mapping "$ID2" /opt/app/crash2
code=$(http_code -H 'Authorization: Bearer secret' --data-binary @"$SCRATCH/p8.pb.gz" "$T_URL/profiles")
[[ $code == 201 ]] || fail profiles_symtab_post "HTTP $code"
if [[ -x $PPROF ]]; then
	for i in $(seq 100); do
		curl -s -o "$SCRATCH/p8a.pb.gz" "$T_URL/profiles"
		pp -traces -lines "$SCRATCH/p8a.pb.gz" >"$SCRATCH/p8a.txt"
		grep -q inner_frame "$SCRATCH/p8a.txt" && break
		sleep 0.1
	done
	grep -q inner_frame "$SCRATCH/p8a.txt" && ! grep -q 'crash.c:' "$SCRATCH/p8a.txt" &&
		ok profiles_symtab_names_first || fail profiles_symtab_names_first "$(head -14 "$SCRATCH/p8a.txt")"
	code=$(http_code -H 'Authorization: Bearer secret' -T "$SCRATCH/crash2.debug" "$T_URL/buildid/$ID2/debuginfo")
	[[ $code == 201 ]] || fail profiles_dwarf_upload "HTTP $code"
	want=$(expect_frames "$LEAF" "$RA_MIDDLE" "$RA_MAIN")
	for i in $(seq 100); do
		curl -s -o "$SCRATCH/p8b.pb.gz" "$T_URL/profiles"
		pp -traces -lines "$SCRATCH/p8b.pb.gz" >"$SCRATCH/p8b.txt"
		[[ $(trace_frames "$SCRATCH/p8b.txt" 900ms) == "$want" ]] && break
		sleep 0.1
	done
	got=$(trace_frames "$SCRATCH/p8b.txt" 900ms)
	[[ -n $want && $got == "$want" ]] && ok profiles_dwarf_replaces_symtab_names ||
		fail profiles_dwarf_replaces_symtab_names "want [$want] got [$got]"
else
	skip profiles_symtab_names_first "pprof could not be built"
fi
finish
