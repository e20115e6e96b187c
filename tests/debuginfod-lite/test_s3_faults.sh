#!/usr/bin/env bash
# The S3 client against a store that misbehaves (fake_s3.py): 500, 503 and
# SlowDown are retried, and fail with EAGAIN once the attempts run out; a
# truncated body or a wrong ETag never leaves a partial file behind; a store
# that stops answering times out.  Real Ceph RGW: tests/cluster/test_s3_rgw.sh.
. "$TOP/tests/lib/check.sh"
scratch
FAKE_PID=
trap '[[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$SCRATCH"' EXIT
T=$TOP/$BUILD/tests/debuginfod-lite/s3_tool
[[ -x $T ]] || { fail s3_tool_built "$T is missing"; finish; }

timeout 300 python3 "$TOP/tests/debuginfod-lite/fake_s3.py" "$SCRATCH/port" 2>"$SCRATCH/fake.log" &
FAKE_PID=$!
for _ in $(seq 100); do [[ -s $SCRATCH/port ]] && break; sleep 0.05; done
[[ -s $SCRATCH/port ]] || { fail fake_s3_start "$(tail -3 "$SCRATCH/fake.log")"; finish; }
E=http://127.0.0.1:$(cat "$SCRATCH/port")
export AWS_ACCESS_KEY_ID=fakekey AWS_SECRET_ACCESS_KEY=fakesecret
# Fast backoff and a 1 s idle timeout keep the test short.
s3() { "$T" --endpoint "$E" --bucket faults --attempts 4 --idle-timeout 1 --stats "$@"; }
fault() { curl -fsS -X POST "$E/__fault?$1" >/dev/null; }
reset() { curl -fsS -X POST "$E/__reset" >/dev/null; }
# get_retried NAME N: a GET of obj comes back whole after exactly N retries.
get_retried() {
	if s3 get obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1 && cmp -s "$SCRATCH/obj" "$SCRATCH/got" &&
		[[ $(stat_of get retries "$SCRATCH/out") == "$2" ]]; then
		ok "$1"
	else fail "$1" "$(tr '\n' ' ' <"$SCRATCH/out")"; fi
}
stat_of() { awk -v op="$1" -v f="$2" '$1 == "stats" && $2 == op { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$3"; }

check s3_fake_bucket_created s3 mkbucket
head -c 300000 /dev/urandom >"$SCRATCH/obj"

# --- retried answers ---
fault "method=PUT&kind=500&count=2"
if s3 put obj "$SCRATCH/obj" >"$SCRATCH/out" 2>&1 && [[ $(stat_of put retries "$SCRATCH/out") == 2 ]]; then
	ok s3_put_retries_500
else fail s3_put_retries_500 "$(tr '\n' ' ' <"$SCRATCH/out")"; fi

fault "method=GET&kind=slowdown&count=2"
fault "method=GET&kind=503&count=1"
get_retried s3_get_retries_slowdown_and_503 3

fault "method=HEAD&kind=503&count=-1"
s3 head obj >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 11 && $(stat_of head requests "$SCRATCH/out") == 4 ]]; then
	ok s3_503_forever_is_eagain_after_4_attempts
else fail s3_503_forever_is_eagain_after_4_attempts "rc $rc: $(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset

s3 get missing "$SCRATCH/none" >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 2 && $(stat_of get requests "$SCRATCH/out") == 1 ]]; then
	ok s3_404_is_enoent_without_retry
else fail s3_404_is_enoent_without_retry "rc $rc: $(tr '\n' ' ' <"$SCRATCH/out")"; fi

# --- bodies that must not be kept ---
fault "method=GET&kind=truncate&count=1"
get_retried s3_truncated_body_retried 1

fault "method=GET&kind=truncate&count=-1"
s3 get obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 5 && ! -s $SCRATCH/got ]] && grep -q truncated < <(curl -s "$E/__log"); then
	ok s3_truncated_body_never_kept
else fail s3_truncated_body_never_kept "rc $rc, $(stat -c %s "$SCRATCH/got") bytes left: $(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset

fault "method=GET&kind=bad_etag&count=-1"
s3 get obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 5 && ! -s $SCRATCH/got ]]; then
	ok s3_wrong_etag_never_kept
else fail s3_wrong_etag_never_kept "rc $rc, $(stat -c %s "$SCRATCH/got") bytes left: $(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset
fault "method=GET&kind=bad_etag&count=1"
if s3 get obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1 && cmp -s "$SCRATCH/obj" "$SCRATCH/got"; then
	ok s3_wrong_etag_once_then_right
else fail s3_wrong_etag_once_then_right "$(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset

# A caller that checks content itself (the blob store, by SHA-256) skips
# the ETag, never the length.
fault "method=GET&kind=bad_etag&count=1"
if s3 --caller-verifies get obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1 && cmp -s "$SCRATCH/obj" "$SCRATCH/got"; then
	ok s3_caller_verifies_skips_etag
else fail s3_caller_verifies_skips_etag "$(tr '\n' ' ' <"$SCRATCH/out")"; fi
fault "method=GET&kind=truncate&count=-1"
s3 --caller-verifies get obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 5 && ! -s $SCRATCH/got ]]; then ok s3_caller_verifies_still_checks_length
else fail s3_caller_verifies_still_checks_length "rc $rc: $(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset

# --- slow answers ---
fault "method=GET&kind=slow&delay=3&count=1"
get_retried s3_slow_answer_times_out_and_retries 1
fault "method=HEAD&kind=slow&delay=3&count=-1"
"$T" --endpoint "$E" --bucket faults --attempts 2 --idle-timeout 1 head obj >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 110 ]]; then ok s3_slow_forever_is_etimedout
else fail s3_slow_forever_is_etimedout "rc $rc: $(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset

# --- multipart, small parts: 300000 bytes in 64 KiB parts ---
mp() { s3 --part-size 65536 --threshold 100000 "$@"; }
fault "method=PUT&kind=500&count=1&prefix=mp"
if mp put mp/obj "$SCRATCH/obj" >"$SCRATCH/out" 2>&1 && grep -q -- '-5$' <(head -1 "$SCRATCH/out") &&
	[[ $(curl -s "$E/__log" | grep -c 'partNumber=') == 6 ]]; then
	ok s3_multipart_put_part_retried
else fail s3_multipart_put_part_retried "$(tr '\n' ' ' <"$SCRATCH/out")"; fi
if s3 get mp/obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1 && cmp -s "$SCRATCH/obj" "$SCRATCH/got"; then
	ok s3_multipart_etag_verified_on_get
else fail s3_multipart_etag_verified_on_get "$(tr '\n' ' ' <"$SCRATCH/out")"; fi
fault "method=GET&kind=bad_etag&count=-1&prefix=mp"
s3 get mp/obj "$SCRATCH/got" >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 5 && ! -s $SCRATCH/got ]]; then ok s3_multipart_wrong_etag_never_kept
else fail s3_multipart_wrong_etag_never_kept "rc $rc: $(tr '\n' ' ' <"$SCRATCH/out")"; fi
reset
fault "method=PUT&kind=503&count=-1&prefix=mp2"
mp put mp2/obj "$SCRATCH/obj" >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 11 && $(curl -s -X POST "$E/__uploads") == 0 ]] && ! s3 head mp2/obj >/dev/null 2>&1; then
	ok s3_multipart_failure_aborts_upload
else fail s3_multipart_failure_aborts_upload "rc $rc, uploads left $(curl -s -X POST "$E/__uploads")"; fi
reset

# --- listing across pages, and delete ---
for i in 1 2 3 4 5; do s3 put "ls/k$i" "$SCRATCH/obj" >/dev/null 2>&1; done
if s3 --page-keys 2 list ls/ >"$SCRATCH/out" 2>&1 && [[ $(grep -c '^ls/k' "$SCRATCH/out") == 5 &&
	$(stat_of list requests "$SCRATCH/out") == 3 ]]; then
	ok s3_list_pages
else fail s3_list_pages "$(tr '\n' ' ' <"$SCRATCH/out")"; fi
if s3 delete ls/k1 >/dev/null 2>&1 && ! s3 head ls/k1 >/dev/null 2>&1 && s3 delete ls/k1 >/dev/null 2>&1; then
	ok s3_delete_idempotent
else fail s3_delete_idempotent "delete or head answered wrong"; fi

# --- the server's replica cache of remote blobs ---
# A blob larger than --cache-quota is still served: the reader gets the
# download itself, not the cache entry that eviction removes at once.  A
# cache an earlier run left over the quota is cut down to it at start.
reset
echo secret >"$SCRATCH/tokens"
DIL_PID=
trap '[[ -n $DIL_PID ]] && kill "$DIL_PID" 2>/dev/null; [[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$SCRATCH"' EXIT
dil() { # CACHE_QUOTA DATA_DIR: start the server over the fake store
	rm -f "$SCRATCH/dil.port"
	"$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$SCRATCH/dil.port" --data "$SCRATCH/$2" \
		--db "sqlite:$SCRATCH/meta.sqlite" --blobs s3://cache --s3-endpoint "$E" --cache-quota "$1" --token-file "$SCRATCH/tokens" \
		--no-watch 2>>"$SCRATCH/dil.log" &
	DIL_PID=$!
	for _ in $(seq 100); do [[ -s $SCRATCH/dil.port ]] && break; sleep 0.05; done
	U=http://127.0.0.1:$(cat "$SCRATCH/dil.port" 2>/dev/null)
}
dil_stop() { kill "$DIL_PID" 2>/dev/null; wait "$DIL_PID" 2>/dev/null; DIL_PID=; }
bid() { readelf -n "$1" | awk '/Build ID/ { print $3; exit }'; }
cached() { find "$SCRATCH/dil/cache" -type f -printf '%s\n' 2>/dev/null | awk '{ t += $1 } END { print t + 0 }'; }
ELFS=(/bin/ls /bin/cp /bin/mv)
dil 1000000000 dil
for f in "${ELFS[@]}"; do
	curl -s -o /dev/null -H 'Authorization: Bearer secret' -T "$f" "$U/buildid/$(bid "$f")/executable"
	curl -s -o /dev/null "$U/buildid/$(bid "$f")/executable"
done
full=$(cached)
dil_stop
dil 50000 dil
left=$(cached)
dil_stop
dil 50000 fresh # a replica with an empty cache: the next read is a download
curl -s -o "$SCRATCH/cp.got" -w '%{http_code}' "$U/buildid/$(bid /bin/cp)/executable" >"$SCRATCH/code"
dil_stop
if [[ $(cat "$SCRATCH/code") == 200 ]] && cmp -s /bin/cp "$SCRATCH/cp.got"; then
	ok s3_cache_blob_over_quota_served
else fail s3_cache_blob_over_quota_served "HTTP $(cat "$SCRATCH/code"): $(tail -2 "$SCRATCH/dil.log" | tr '\n' ' ')"; fi
if ((full > 50000 && left <= 50000)); then ok s3_cache_quota_held_across_restart
else fail s3_cache_quota_held_across_restart "cache held $full bytes, $left after a restart with quota 50000"; fi
finish
