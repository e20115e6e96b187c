#!/usr/bin/env bash
# Memory attacks on a real debuginfod-lite (docs/security.md "Memory",
# "Transient trouble"): decompression bombs just under and over the caps
# (GET section/, /unwind, POST /symbolize), concurrent gzip bombs on POST
# /profiles, large stored profiles read by clients that hang up, the merge
# refused with a 413 that says how to narrow; the server's peak RSS
# (VmHWM) against --memory-budget + MEM_SLACK; ENOSPC while deriving an
# artifact answers a reset, never a 404, and works once space is back.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
trap 'stop_servers; umount "$SCRATCH/full" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
BOMB=$TOP/tests/attack/elf_bomb.py
MiB=$((1 << 20))
BUDGET=$((256 * MiB))
CAP=$((64 * MiB))       # --max-decompressed
BODY_CAP=$((32 * MiB))  # --max-decompressed-body
# What the server holds outside the budget: code and libraries (~20 MiB),
# thread stacks touched, sqlite page caches, mapped symbolization indexes,
# malloc's slack.  docs/security.md "Memory" documents the same figure.
MEM_SLACK=$((128 * MiB))

# --- the bombs, generated here (tests/attack/elf_bomb.py) ---
mkdir -p "$SCRATCH/scan"
bomb() { python3 "$BOMB" "$SCRATCH/scan/$1" "${@:2}"; }
UNDER_ZSTD=$(bomb under-zstd .debug_info:zstd:$((CAP - 4096)))
UNDER_ZLIB=$(bomb under-zlib .debug_info:zlib:$((CAP - 4096)))
OVER=$(bomb over .debug_info:zstd:$((CAP + 4096)))
# Four sections just under the cap (and CFI): one index build or unwind
# compile would hold several times the cap.
FOUR=$(bomb four .debug_info:zstd:$((CAP - 4096)) .debug_line:zstd:$((CAP - 4096)) \
	.debug_str:zlib:$((CAP - 4096)) .debug_frame:zstd:$((CAP - 4096)))
# A .gnu_debuglink (a name and a CRC) claiming the cap: read at scan time,
# outside the budget, so it must be refused small.
LINK=$(bomb link .debug_info:zstd:4096 .gnu_debuglink:zstd:$((CAP - 4096)))
CONC=()
for i in 1 2 3 4 5 6; do
	[[ $((i % 2)) == 0 ]] && kind=zlib || kind=zstd
	CONC+=("$(bomb conc$i .debug_info:$kind:$((CAP - 4096)))")
done
ls -l "$SCRATCH/scan" | awk 'NR > 1 { s += $5 } END { print "bomb files: " NR - 1 ", " s " bytes in all" }'

echo secret >"$SCRATCH/tokens"
AUTH=(-H 'Authorization: Bearer secret')
ARGS=(--data "$SCRATCH/data" --scan "$SCRATCH/scan" --rescan 0 --no-watch --token-file "$SCRATCH/tokens"
	--memory-budget $BUDGET --max-decompressed $CAP --max-decompressed-body $BODY_CAP --max-heavy 6)
dil_start S "${ARGS[@]}"
wait_for "$S_URL/buildid/$OVER/debuginfo" || fail memory_scan "bombs not indexed"
SPID=$(pgrep -P "$S_PID" debuginfod-lite || echo "$S_PID")
[[ $(http_code "$S_URL/buildid/$LINK/debuginfo") == 200 ]] && ok memory_debuglink_bomb_indexed \
	|| fail memory_debuglink_bomb_indexed
alive() { kill -0 "$SPID" 2>/dev/null && [[ $(http_code "$S_URL/") == 200 ]]; }
# curl's exit status and HTTP code: "52 000" is a reset (empty reply), "0 200" a 200.
fetch() { curl -s -o "$SCRATCH/out" -w '%{http_code}' --max-time 60 "$@"; echo " $?"; }
is_reset() { [[ $1 == "000 52" || $1 == "000 56" ]]; }

# 1. A section just under the cap is served (it fits the budget); over the
#    cap it is refused with a reset (no 404 for libdebuginfod to cache).
for id in "$UNDER_ZSTD" "$UNDER_ZLIB"; do
	r=$(fetch "$S_URL/buildid/$id/section/.debug_info")
	size=$(stat -c %s "$SCRATCH/out" 2>/dev/null)
	[[ $r == "200 0" && $size == $((CAP - 4096)) ]] && ok "memory_section_under_cap_$id" \
		|| fail "memory_section_under_cap_$id" "got '$r', $size bytes"
done
r=$(fetch "$S_URL/buildid/$OVER/section/.debug_info")
is_reset "$r" && ok memory_section_over_cap_reset || fail memory_section_over_cap_reset "got '$r' (want a reset)"
r=$(fetch -I "$S_URL/buildid/$OVER/section/.debug_info")
is_reset "$r" && ok memory_section_over_cap_head_reset || fail memory_section_over_cap_head_reset "got '$r'"
alive && ok memory_alive_after_section_bombs || fail memory_alive_after_section_bombs

# 2. Six concurrent sections just under the cap: more than the budget at
#    once.  Each answer is a 200 or a reset (never a 404 nor a crash), and
#    every one works when asked again.
pids=()
for i in "${!CONC[@]}"; do
	(fetch "$S_URL/buildid/${CONC[$i]}/section/.debug_info" >"$SCRATCH/conc.$i") &
	pids+=($!)
done
wait "${pids[@]}"
bad=""
for i in "${!CONC[@]}"; do
	r=$(cat "$SCRATCH/conc.$i")
	[[ $r == "200 0" ]] || is_reset "$r" || bad+=" $i:$r"
done
[[ -z $bad ]] && ok memory_concurrent_sections_200_or_reset || fail memory_concurrent_sections_200_or_reset "$bad"
bad=""
for i in "${!CONC[@]}"; do
	r=$(fetch "$S_URL/buildid/${CONC[$i]}/section/.debug_info")
	[[ $r == "200 0" ]] || bad+=" $i:$r"
done
[[ -z $bad ]] && ok memory_concurrent_sections_retry_ok || fail memory_concurrent_sections_retry_ok "$bad"

# 3. Many sections under the cap: the index build and the unwind compile
#    would need several times the budget; refused before any work.
t0=$(date +%s%N)
out=$(curl -s --max-time 60 -d "{\"requests\":[{\"build_id\":\"$FOUR\",\"addresses\":[\"0x1000\"]}]}" \
	"$S_URL/symbolize")
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $out == *'"error":"debuginfo too large to index'* ]] && ok memory_symbolize_bomb_refused \
	|| fail memory_symbolize_bomb_refused "${out:0:200} (${ms} ms)"
echo "symbolize of the four-section bomb answered in ${ms} ms"
out=$(curl -s --max-time 60 -d "{\"requests\":[{\"build_id\":\"$OVER\",\"addresses\":[\"0x1000\"]}]}" \
	"$S_URL/symbolize")
[[ $out == *'"error":"debuginfo too large to index'* ]] && ok memory_symbolize_over_cap_refused \
	|| fail memory_symbolize_over_cap_refused "${out:0:200}"
r=$(fetch "$S_URL/buildid/$FOUR/unwind")
is_reset "$r" && ok memory_unwind_bomb_reset || fail memory_unwind_bomb_reset "got '$r' (want a reset)"
alive && ok memory_alive_after_index_bombs || fail memory_alive_after_index_bombs

# 4. Eight concurrent gzip bombs on POST /profiles, each just under
#    --max-decompressed-body: a valid protobuf (one huge string) that needs
#    more than the budget eight times over.  None is stored, the server
#    stays up; the refusals are 503 + Retry-After (busy) or 400 (parsed:
#    no sample types).  Over the cap, and with a lying gzip trailer: 413.
gzbomb() { # OUT PLAIN_BYTES [TRAILER]
	python3 - "$@" <<'PY'
import struct, sys, zlib
out, n = sys.argv[1], int(sys.argv[2])
s = n - 16  # field 6 (string_table) holding one string of s bytes, after ""
v, enc = s, b''
while True:
    b = v & 0x7f; v >>= 7
    enc += bytes([b | (0x80 if v else 0)])
    if not v: break
head = b'\x32\x00\x32' + enc
z = zlib.compressobj(9, zlib.DEFLATED, 31)
data = [z.compress(head)]
chunk = b'a' * (1 << 20)
left = s
while left:
    k = min(left, len(chunk)); data.append(z.compress(chunk[:k])); left -= k
data.append(z.flush())
blob = b''.join(data)
if len(sys.argv) > 3:  # lie in the trailer
    blob = blob[:-4] + struct.pack('<I', int(sys.argv[3]))
open(out, 'wb').write(blob)
PY
}
gzbomb "$SCRATCH/gz.under" $((BODY_CAP - 4096))
gzbomb "$SCRATCH/gz.over" $((BODY_CAP + 4096))
gzbomb "$SCRATCH/gz.liar" $((BODY_CAP - 4096)) 1000
ls -l "$SCRATCH"/gz.* | awk '{ print "gzip bomb " $NF ": " $5 " bytes" }'
before=$(metric "$S_URL" profiles_stored_total)
pids=()
for i in 1 2 3 4 5 6 7 8; do
	curl -s -o "$SCRATCH/gzr.$i" -D "$SCRATCH/gzh.$i" -w '%{http_code}\n' --max-time 60 "${AUTH[@]}" \
		--data-binary @"$SCRATCH/gz.under" "$S_URL/profiles" >"$SCRATCH/gzc.$i" &
	pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$SCRATCH"/gzc.* | sort | uniq -c | tr -s ' \n' ' ')
echo "8 concurrent gzip bombs: $codes"
bad=""
for i in 1 2 3 4 5 6 7 8; do
	c=$(cat "$SCRATCH/gzc.$i")
	case $c in
	503) grep -qi '^Retry-After:' "$SCRATCH/gzh.$i" || bad+=" $i:503-without-Retry-After" ;;
	400|413) ;;
	*) bad+=" $i:$c" ;;
	esac
done
[[ -z $bad && $(metric "$S_URL" profiles_stored_total) == "$before" ]] && ok memory_gzip_bombs_refused \
	|| fail memory_gzip_bombs_refused "$codes$bad"
c=$(curl -s -o "$SCRATCH/gzr" -w '%{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/gz.over" "$S_URL/profiles")
[[ $c == 413 ]] && ok memory_gzip_over_cap_413 || fail memory_gzip_over_cap_413 "$c $(head -c 200 "$SCRATCH/gzr")"
c=$(curl -s -o "$SCRATCH/gzr" -w '%{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/gz.liar" "$S_URL/profiles")
[[ $c == 413 || $c == 400 ]] && ok memory_gzip_lying_trailer_refused \
	|| fail memory_gzip_lying_trailer_refused "$c $(head -c 200 "$SCRATCH/gzr")"
alive && ok memory_alive_after_gzip_bombs || fail memory_alive_after_gzip_bombs

# 5. Large stored profiles (8 x 60k samples of shared stacks, written by
#    tests/attack/make_profiles.py), read by
#    clients that hang up after a second: the merges stop (metric
#    work_abandoned_total, log), their memory is released.
python3 "$TOP/tests/attack/make_profiles.py" "$SCRATCH" 8 60000
stored=0
for i in 1 2 3 4 5 6 7 8; do
	c=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/big$i.pb.gz" "$S_URL/profiles")
	[[ $c == 201 ]] && stored=$((stored + 1))
done
echo "stored $stored large profiles of $(stat -c %s "$SCRATCH/big1.pb.gz") bytes each"
[[ $stored == 8 ]] && ok memory_large_profiles_stored || fail memory_large_profiles_stored "$stored of 8"
idle() { # until the worker symbolized them and no work holds memory
	local i
	for i in $(seq 300); do
		[[ $(metric "$S_URL" profiles_symbolized_total) -ge 8 && $(metric "$S_URL" heavy_active) == 0 &&
		   $(metric "$S_URL" memory_reserved_bytes) == 0 ]] && return 0
		sleep 0.1
	done
	return 1
}
idle
abandoned0=$(metric "$S_URL" work_abandoned_total)
pids=()
for i in 1 2 3 4; do
	curl -s -o /dev/null --max-time 0.3 "$S_URL/profiles?symbolize=0" &
	pids+=($!)
done
wait "${pids[@]}"
idle
abandoned=$(($(metric "$S_URL" work_abandoned_total) - abandoned0))
echo "clients that hung up: 4, merges abandoned: $abandoned, heavy_active now $(metric "$S_URL" heavy_active)"
[[ $abandoned -ge 1 ]] && grep -q 'abandoned: the client left' "$SCRATCH/S.log" \
	&& ok memory_hangup_stops_merge || fail memory_hangup_stops_merge "abandoned=$abandoned"
[[ $(metric "$S_URL" heavy_active) == 0 ]] && ok memory_hangup_frees_slots \
	|| fail memory_hangup_frees_slots "heavy_active=$(metric "$S_URL" heavy_active)"
# One whole merge that fits: 200 with all eight merged.
for i in 1 2 3; do # a client honours Retry-After
	hdr=$(curl -s -o "$SCRATCH/merged.pb.gz" -D - --max-time 100 "$S_URL/profiles?symbolize=0")
	[[ $hdr == *' 503'* ]] || break
	sleep 5
done
[[ $hdr == *' 200'* && $hdr == *'X-Profiles-Merged: 8'* ]] && ok memory_merge_within_budget \
	|| fail memory_merge_within_budget "$(echo "$hdr" | head -3 | tr '\r\n' '  ')"
sleep 0.5
reserved=$(metric "$S_URL" memory_reserved_bytes)
[[ $reserved == 0 ]] && ok memory_all_released || fail memory_all_released "memory_reserved_bytes=$reserved"
curl -s "$S_URL/metrics" | grep -E '^(memory_|heavy_|work_abandoned|transient_refusals)'

# 6. The peak: VmHWM of the server after all of the above.
hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SPID/status")
limit_kb=$(((BUDGET + MEM_SLACK) / 1024))
echo "VmHWM: $((hwm_kb / 1024)) MiB after the memory attacks (budget $((BUDGET / MiB)) MiB + slack $((MEM_SLACK / MiB)) MiB = $((limit_kb / 1024)) MiB)"
if [[ ${SAN:-} == 1 || $BUILD == *san* ]]; then
	skip memory_vmhwm_bounded "sanitizers inflate RSS (VmHWM $((hwm_kb / 1024)) MiB, not enforced)"
elif [[ -n $hwm_kb && $hwm_kb -le $limit_kb ]]; then
	ok memory_vmhwm_bounded
else
	fail memory_vmhwm_bounded "VmHWM $((hwm_kb / 1024)) MiB > $((limit_kb / 1024)) MiB"
fi
alive && ok memory_alive_at_end || fail memory_alive_at_end

# 7. The merge that can never fit the budget: a 413 that says how to narrow.
kill -TERM "$S_PID"; wait "$S_PID" 2>/dev/null
start_server N --data "$SCRATCH/data" --rescan 0 --no-watch --memory-budget $((100 * MiB)) \
	--max-heavy 1 || fail memory_small_server "did not start"
out=$(curl -s -w ' %{http_code}' "$N_URL/profiles?symbolize=0" | tr -cd '[:print:]\n')
[[ $out == *' 413' && $out == *'narrow from/to or add label='* ]] && ok memory_merge_413_says_narrow \
	|| fail memory_merge_413_says_narrow "${out:0:300}"
c=$(curl -s -o /dev/null -w '%{http_code}' "$N_URL/profiles?symbolize=0&id=1")
[[ $c == 200 ]] && ok memory_narrow_merge_ok || fail memory_narrow_merge_ok "id=1: $c"
# --max-heavy 1: twelve merges at once; one runs, eight wait for the slot,
# the rest are refused at once with 503 + Retry-After.
pids=()
for i in $(seq 12); do
	curl -s -o /dev/null -D "$SCRATCH/hh.$i" -w '%{http_code}\n' --max-time 60 \
		"$N_URL/profiles?symbolize=0" >"$SCRATCH/hc.$i" &
	pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$SCRATCH"/hc.* | sort | uniq -c | tr -s ' \n' ' ')
echo "12 merges with --max-heavy 1: $codes"
n503=$(grep -l '^503' "$SCRATCH"/hc.* | wc -l)
retry=$(grep -il '^Retry-After:' "$SCRATCH"/hh.* | wc -l)
[[ $n503 -ge 1 && $retry == "$n503" && $(metric "$N_URL" heavy_refusals_total) -ge 1 &&
   $(grep -c '^413' "$SCRATCH"/hc.* | awk -F: '{ s += $2 } END { print s }') -ge 1 ]] \
	&& ok memory_max_heavy_503 || fail memory_max_heavy_503 "$codes"
stop_servers

# 8. ENOSPC while deriving: a reset (no 404 cached by clients), then a 200
#    once space is back.  The data directory is a small tmpfs, filled up.
mkdir -p "$SCRATCH/full" "$SCRATCH/scan2"
if ! mount -t tmpfs -o size=6m tmpfs "$SCRATCH/full" 2>/dev/null; then
	skip memory_enospc "cannot mount a tmpfs (needs root)"
	finish
fi
cp "$FIX/crash" "$SCRATCH/scan2/"
CRASH=$(build_id_of "$FIX/crash")
dil_start F --data "$SCRATCH/full/data" --scan "$SCRATCH/scan2" --rescan 0 --no-watch
wait_for "$F_URL/buildid/$CRASH/debuginfo" || fail memory_enospc_scan
dd if=/dev/zero of="$SCRATCH/full/filler" bs=64k 2>/dev/null
df -k "$SCRATCH/full" | awk 'NR == 2 { print "tmpfs data dir: " $4 " KiB free" }'
r=$(fetch "$F_URL/buildid/$CRASH/section/.debug_info")
is_reset "$r" && ok memory_enospc_section_reset || fail memory_enospc_section_reset "got '$r' (want a reset)"
r=$(fetch "$F_URL/buildid/$CRASH/unwind")
is_reset "$r" && ok memory_enospc_unwind_reset || fail memory_enospc_unwind_reset "got '$r' (want a reset)"
rm -f "$SCRATCH/full/filler"
r=$(fetch "$F_URL/buildid/$CRASH/section/.debug_info")
[[ $r == "200 0" ]] && ok memory_enospc_then_200 || fail memory_enospc_then_200 "got '$r'"
r=$(fetch "$F_URL/buildid/$CRASH/unwind")
[[ $r == "200 0" ]] && ok memory_enospc_unwind_then_200 || fail memory_enospc_unwind_then_200 "got '$r'"
stop_servers
umount "$SCRATCH/full"
finish
