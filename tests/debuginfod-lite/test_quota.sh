#!/usr/bin/env bash
# --quota evicts the least recently used upstream/derived blobs: of two
# upstream copies, the one written first but served since stays, the other
# goes.  Last use is the blob's atime, recorded when it is served.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
mkdir -p "$SCRATCH/up-files"
cp "$FIX/crash" "$SCRATCH/up-files/first"
cp "$FIXTURES/symbolizer/c-O2-dw4" "$SCRATCH/up-files/second"
FIRST_ID=$(build_id_of "$SCRATCH/up-files/first")
SECOND_ID=$(build_id_of "$SCRATCH/up-files/second")
blob_of() { local h; h=$(sha256sum "$1" | cut -c1-64); echo "$SCRATCH/q/blobs/${h:0:2}/${h:2}"; }
FIRST_BLOB=$(blob_of "$SCRATCH/up-files/first")
SECOND_BLOB=$(blob_of "$SCRATCH/up-files/second")

dil_start UP --data "$SCRATCH/up" --scan "$SCRATCH/up-files" --rescan 0
wait_for "$UP_URL/buildid/$SECOND_ID/debuginfo" || fail upstream_scan
dil_start Q --data "$SCRATCH/q" --upstream "$UP_URL" --rescan 0
# Written in this order, a second apart (rows keep whole seconds).
[[ $(http_code "$Q_URL/buildid/$FIRST_ID/debuginfo") == 200 ]] || fail fetch_first
sleep 1.1
[[ $(http_code "$Q_URL/buildid/$SECOND_ID/debuginfo") == 200 ]] || fail fetch_second
[[ -f $FIRST_BLOB && -f $SECOND_BLOB ]] && ok quota_both_stored || fail quota_both_stored
# Both last used (and written) two hours ago; then the first is served again.
touch -d '2 hours ago' "$FIRST_BLOB" "$SECOND_BLOB"
[[ $(http_code "$Q_URL/buildid/$FIRST_ID/debuginfo") == 200 ]] || fail serve_first
stop_servers
# Room for one of them only: grooming at start evicts one.
quota=$(( $(stat -c %s "$FIRST_BLOB") + $(stat -c %s "$SECOND_BLOB") - 1 ))
dil_start Q --data "$SCRATCH/q" --quota "$quota" --rescan 0
for i in $(seq 100); do
	[[ -f $FIRST_BLOB && -f $SECOND_BLOB ]] || break
	sleep 0.1
done
[[ -f $FIRST_BLOB ]] && ok quota_keeps_recently_used || fail quota_keeps_recently_used "evicted"
[[ ! -f $SECOND_BLOB ]] && ok quota_evicts_least_recently_used || fail quota_evicts_least_recently_used "kept"
[[ $(http_code "$Q_URL/buildid/$FIRST_ID/debuginfo") == 200 ]] && ok quota_serves_kept \
	|| fail quota_serves_kept
finish
