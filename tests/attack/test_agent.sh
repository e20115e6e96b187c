#!/usr/bin/env bash
# The agent believes nothing it is sent.  A hostile table server (table_server.py)
# answers the real profiler-agent, sampling a stripped -fomit-frame-pointer
# fixture, with a well-formed table of another build-ID, a table for another
# architecture, 200 MB bodies (with and without Content-Length) and garbage:
# none is loaded or cached, and samples still unwind to main through a local
# compile.  A corrupt cache entry is purged and refetched, leftovers are
# removed, and the cache stays under --cache-max-mb by evicting the least
# recently used tables.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/agent-hooks/lib.sh"
agent_setup
MODES="other arch huge chunked garbage"
names=()
for m in $MODES; do names+=("${m}_rejected" "${m}_not_cached" "${m}_unwinds_to_main"); done
need_bpf "${names[@]}" corrupt_cache_purged strays_removed lru_under_limit lru_oldest_evicted \
	lru_used_entry_kept
SPIN_ID=$(build_id_of "$AFIX/spin")
LDSO_ID=$(build_id_of "$LDSO")
T=$SCRATCH/tables
mkdir -p "$T/tables"
echo "$SPIN_ID" >"$T/target"
"$BIN/unwind-compile" "$AFIX/spin" -o "$SCRATCH/spin.unwind" &&
	"$BIN/unwind-compile" "$AFIX/blip" -o "$T/other.unwind" &&
	"$BIN/unwind-compile" "$LIBC" -o "$T/tables/$LIBC_ID" &&
	"$BIN/unwind-compile" "$LDSO" -o "$T/tables/$LDSO_ID" || { fail compile_tables; finish; }
# The spin table with e_machine 183 (aarch64) in its header (offset 6).
python3 - "$SCRATCH/spin.unwind" "$T/arch.unwind" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[6:8] = (183).to_bytes(2, 'little')
open(sys.argv[2], 'wb').write(d)
PY
head -c 100000 /dev/urandom >"$T/garbage"
timeout 280 python3 "$TOP/tests/attack/table_server.py" --dir "$T" --lifetime 270 \
	2>"$SCRATCH/tables.log" &
BG+=($!)
for i in $(seq 100); do [[ -s $T/port ]] && break; sleep 0.05; done
URL=http://127.0.0.1:$(cat "$T/port")

"$AFIX/spin" 250 >/dev/null & SPIN=$!; BG+=("$SPIN")
run_agent() { # NAME ARGS...
	local name=$1; shift
	timeout 90 "$AGENT" --pid "$SPIN" --server "$URL" --no-upload --frequency 199 --interval 1 \
		--duration 3 --stats-file "$SCRATCH/$name.json" --output "$SCRATCH/$name.out" \
		--buffer-dir "$SCRATCH/$name.buf" "$@" 2>"$SCRATCH/$name.err"
}
reach() { # NAME: fraction of the spin samples that unwind to main, or a reason
	$CHECK reach --build-id "$SPIN_ID" --exe "$AFIX/spin.debug" --function main \
		--symbolize "$BIN/symbolize" "$SCRATCH/$1".out/*.pb.gz 2>&1
}
reaches_main() {
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["samples_in_object"] >= 20 and r["fraction"] >= 0.99))' "$1" 2>/dev/null
}
# Bytes of every file in a cache directory (the buffer lives elsewhere).
cache_bytes() { find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

declare -A COUNTER=([other]=tables_rejected_build_id [arch]=tables_rejected_arch
	[huge]=tables_rejected_too_big [chunked]=tables_rejected_too_big
	[garbage]=tables_rejected_malformed)
for m in $MODES; do
	echo "$m" >"$T/mode"
	run_agent "$m" --cache-dir "$SCRATCH/cache-$m"
	st=$SCRATCH/$m.json
	n=$(json "$st" "${COUNTER[$m]}" 2>/dev/null || echo missing)
	[[ $n != missing && $n -ge 1 ]] && grep -q "rejected" "$SCRATCH/$m.err" && ok "${m}_rejected" ||
		fail "${m}_rejected" "${COUNTER[$m]}=$n; $(grep -c . "$SCRATCH/$m.err") log lines; bad_fetched_tables=$(json "$st" bad_fetched_tables 2>/dev/null)"
	size=$(cache_bytes "$SCRATCH/cache-$m")
	[[ ! -e $SCRATCH/cache-$m/$SPIN_ID.unwind ]] && (( size < 1048576 )) && ok "${m}_not_cached" ||
		fail "${m}_not_cached" "cache holds $size bytes: $(ls "$SCRATCH/cache-$m" | tr '\n' ' ')"
	r=$(reach "$m")
	reaches_main "$r" && ok "${m}_unwinds_to_main" || fail "${m}_unwinds_to_main" "$r"
done
echo "cache sizes after the hostile runs: $(for m in $MODES; do printf '%s=%s ' "$m" "$(cache_bytes "$SCRATCH/cache-$m")"; done)"

# A corrupt cache entry, with the ETag the server would confirm with a 304:
# it must be purged and fetched anew, not revalidated and kept.  Beside it,
# a dead writer's temporary file and an ETag without a table.
echo ok >"$T/mode"
cp "$SCRATCH/spin.unwind" "$T/tables/$SPIN_ID"
tag=$(python3 -c 'import hashlib,sys; print("\"%s\"" % hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest()[:16])' "$SCRATCH/spin.unwind")
C=$SCRATCH/cache-purge
mkdir -p "$C"
head -c 5000 /dev/urandom >"$C/$SPIN_ID.unwind"
printf '%s' "$tag" >"$C/$SPIN_ID.etag"
true & dead=$!; wait "$dead"
head -c 3000 /dev/urandom >"$C/$LIBC_ID.unwind.tmp.$dead"
echo '"x"' >"$C/00112233445566778899aabbccddeeff00112233.etag"
run_agent purge --cache-dir "$C"
cmp -s "$C/$SPIN_ID.unwind" "$SCRATCH/spin.unwind" && (( $(json "$SCRATCH/purge.json" cache_purged) >= 1 )) &&
	reaches_main "$(reach purge)" && ok corrupt_cache_purged ||
	fail corrupt_cache_purged "entry $(cmp "$C/$SPIN_ID.unwind" "$SCRATCH/spin.unwind" 2>&1 | head -1); $(grep "^$SPIN_ID" "$T/requests" | tail -1); $(cat "$SCRATCH/purge.json")"
[[ ! -e $C/$LIBC_ID.unwind.tmp.$dead && ! -e $C/00112233445566778899aabbccddeeff00112233.etag ]] &&
	ok strays_removed || fail strays_removed "$(ls "$C" | tr '\n' ' ')"

# LRU: four 40 kB entries used 4, 3, 2 and 1 hours ago, and spin's valid
# table, used 5 hours ago but about to be used (a 304) before any write.
# Writing libc's and ld.so's tables needs 60 kB more than the limit allows:
# the two oldest unused entries go, spin's stays.
L=$SCRATCH/cache-lru
mkdir -p "$L"
cp "$SCRATCH/spin.unwind" "$L/$SPIN_ID.unwind"
printf '%s' "$tag" >"$L/$SPIN_ID.etag"
touch -d '5 hours ago' "$L/$SPIN_ID.unwind" "$L/$SPIN_ID.etag"
for h in 1 2 3 4; do
	id=$(printf 'feed%036d' "$h")
	head -c 40000 /dev/urandom >"$L/$id.unwind"
	touch -d "$h hours ago" "$L/$id.unwind"
done
libc_bytes=$(stat -c %s "$T/tables/$LIBC_ID")
ldso_bytes=$(stat -c %s "$T/tables/$LDSO_ID")
limit=$(( $(cache_bytes "$L") + libc_bytes + ldso_bytes + 2 * 18 - 60000 ))
mb=$(python3 -c "print(repr(($limit + 0.5) / 1048576))")
run_agent lru --cache-dir "$L" --cache-max-mb "$mb"
size=$(cache_bytes "$L")
echo "lru: limit $limit bytes, cache $size bytes: $(cd "$L" && ls -t | tr '\n' ' ')"
(( size <= limit )) && [[ -e $L/$LIBC_ID.unwind ]] && (( $(json "$SCRATCH/lru.json" cache_evictions) >= 1 )) &&
	ok lru_under_limit || fail lru_under_limit "$size > $limit bytes, or libc not cached: $(cat "$SCRATCH/lru.json")"
[[ ! -e $L/$(printf 'feed%036d' 4).unwind && -e $L/$(printf 'feed%036d' 1).unwind ]] &&
	ok lru_oldest_evicted || fail lru_oldest_evicted "$(ls "$L" | tr '\n' ' ')"
[[ -e $L/$SPIN_ID.unwind ]] && ok lru_used_entry_kept || fail lru_used_entry_kept "$(ls "$L" | tr '\n' ' ')"
finish
