#!/usr/bin/env bash
# Small artifacts answered from memory (--memory-cache, body_cache.h): the
# second GET of a small scanned file or stored blob is a hit, byte-identical
# (debuginfod-find as the client), with Range, HEAD and If-None-Match as
# from the file; a scanned file that changed, or a blob that is gone, is
# never answered from the old copy; large files and --memory-cache 0 keep
# nothing.  The sqlite lookup cache beside it: an upload is served at once.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
mkdir -p "$SCRATCH/files"
cp "$FIX/crash" "$SCRATCH/files/small"
SMALL="$SCRATCH/files/small"
SMALL_ID=$(build_id_of "$SMALL")
size=$(stat -c %s "$SMALL")
((size < 65536)) || { fail fixture_small "crash is $size bytes"; finish; }
echo tok >"$SCRATCH/tokens"
# --no-watch: a change is seen only when the file is served.
dil_start A --data "$SCRATCH/a" --scan "$SCRATCH/files" --rescan 0 --no-watch --token-file "$SCRATCH/tokens"
U=$A_URL/buildid/$SMALL_ID/executable
wait_for "$U" || { fail scan_served; finish; }

# 1. Scanned file: the second GET is a hit, both byte-identical.
curl -s -o "$SCRATCH/g1" "$U"
h0=$(metric "$A_URL" body_cache_hits_total)
curl -s -o "$SCRATCH/g2" "$U"
h1=$(metric "$A_URL" body_cache_hits_total)
cmp -s "$SCRATCH/g1" "$SMALL" && cmp -s "$SCRATCH/g2" "$SMALL" && ((h1 == h0 + 1)) \
	&& ok memory_hit_identical || fail memory_hit_identical "hits $h0 -> $h1"
if command -v debuginfod-find >/dev/null; then
	got=$(DEBUGINFOD_URLS=$A_URL debuginfod-find executable "$SMALL_ID" 2>&1)
	cmp -s "$got" "$SMALL" && ok memory_debuginfod_find || fail memory_debuginfod_find "$got"
else
	skip memory_debuginfod_find "debuginfod-find not installed"
fi
# Range, HEAD and the headers from memory are those of the file.
curl -s -r 100-1099 -o "$SCRATCH/r" -w '%{http_code}' "$U" >"$SCRATCH/code"
[[ $(cat "$SCRATCH/code") == 206 ]] && cmp -s "$SCRATCH/r" <(tail -c +101 "$SMALL" | head -c 1000) \
	&& ok memory_range || fail memory_range "$(cat "$SCRATCH/code")"
hd=$(curl -s -I "$U" | tr -d '\r')
grep -qi "^content-length: $size$" <<<"$hd" && grep -qi '^x-debuginfod-size: ' <<<"$hd" \
	&& grep -qi '^last-modified: ' <<<"$hd" && ok memory_head || fail memory_head "$hd"
# HEAD sends no body: the next answer on the same connection parses.
python3 - "$A_URL" "/buildid/$SMALL_ID/executable" "$size" <<'PY' && ok memory_head_no_body || fail memory_head_no_body
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1][len('http://'):], timeout=10)
c.request('HEAD', sys.argv[2]); r = c.getresponse(); r.read()
c.request('GET', sys.argv[2]); r = c.getresponse(); body = r.read()
sys.exit(0 if r.status == 200 and len(body) == int(sys.argv[3]) else 1)
PY

# 2. The scanned file changes in place (same size, new bytes, new time):
# never the old bytes again.
curl -s -o /dev/null "$U"
python3 - "$SMALL" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[-1] ^= 0xff
open(p, 'wb').write(b)
PY
touch -d '+5 seconds' "$SMALL"
code=$(curl -s -o "$SCRATCH/g3" -w '%{http_code}' "$U")
if [[ $code == 200 ]]; then
	cmp -s "$SCRATCH/g3" "$SMALL" && ok memory_changed_file_not_stale || fail memory_changed_file_not_stale "old bytes"
else
	[[ $code == 404 ]] && ok memory_changed_file_not_stale || fail memory_changed_file_not_stale "code $code"
fi

# 3. An uploaded blob: served at once (the lookup cache saw the write),
# then from memory; its ETag gives 304; once the blob file is gone, never
# the copy in memory.
cp "$FIXTURES/symbolizer/c-O2-dw4" "$SCRATCH/dbg"
DBG_ID=$(build_id_of "$SCRATCH/dbg" 2>/dev/null)
D=$A_URL/buildid/$DBG_ID/debuginfo
[[ $(http_code "$D") == 404 ]] || fail memory_blob_absent_first
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tok' -T "$SCRATCH/dbg" "$D")
[[ $c == 201 && $(http_code "$D") == 200 ]] && ok memory_upload_served_at_once \
	|| fail memory_upload_served_at_once "put $c"
h0=$(metric "$A_URL" body_cache_hits_total)
curl -s -o "$SCRATCH/d2" "$D"
h1=$(metric "$A_URL" body_cache_hits_total)
cmp -s "$SCRATCH/d2" "$SCRATCH/dbg" && ((h1 == h0 + 1)) && ok memory_blob_hit \
	|| fail memory_blob_hit "hits $h0 -> $h1"
sha=$(sha256sum "$SCRATCH/dbg" | cut -c1-64)
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$sha\"" "$D") == 304 ]] \
	&& ok memory_etag_304 || fail memory_etag_304
rm -f "$SCRATCH/a/blobs/${sha:0:2}/${sha:2}"
# (the server forgets the row; this request ends in a reset or a 404)
c=$(http_code "$D")
[[ $c != 200 ]] && ok memory_blob_gone_not_served || fail memory_blob_gone_not_served "$c"

# 4. Over 64 KiB: sent from the file, nothing kept.
BIG=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
cp "$BIG" "$SCRATCH/files/big"
stop_servers
dil_start B --data "$SCRATCH/b" --scan "$SCRATCH/files" --rescan 0
BIG_ID=$(build_id_of "$BIG")
wait_for "$B_URL/buildid/$BIG_ID/executable" || fail big_served
curl -s -o "$SCRATCH/b1" "$B_URL/buildid/$BIG_ID/executable"
curl -s -o "$SCRATCH/b2" "$B_URL/buildid/$BIG_ID/executable"
cmp -s "$SCRATCH/b2" "$BIG" && [[ $(metric "$B_URL" body_cache_fills_total) == 0 ]] \
	&& ok memory_large_not_kept || fail memory_large_not_kept "fills $(metric "$B_URL" body_cache_fills_total)"

# 5. --memory-cache 0: nothing kept, same bytes.
stop_servers
dil_start C --data "$SCRATCH/c" --scan "$SCRATCH/files" --rescan 0 --memory-cache 0
SMALL_ID=$(build_id_of "$SMALL")
wait_for "$C_URL/buildid/$SMALL_ID/executable" || fail off_served
curl -s -o "$SCRATCH/c1" "$C_URL/buildid/$SMALL_ID/executable"
curl -s -o "$SCRATCH/c2" "$C_URL/buildid/$SMALL_ID/executable"
cmp -s "$SCRATCH/c2" "$SMALL" && [[ $(metric "$C_URL" body_cache_hits_total) == 0 &&
	$(metric "$C_URL" body_cache_bytes) == 0 ]] && ok memory_cache_off || fail memory_cache_off
finish
