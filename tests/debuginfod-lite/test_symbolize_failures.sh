#!/usr/bin/env bash
# A build-ID whose symbolization index cannot be built (DWARF that passes
# upload validation but is unreadable) is remembered: the next POST
# /symbolize answers the same error without building again.  Good
# debuginfo uploaded for that build-ID clears it, and symbolization works.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
echo "s3cret-token" >"$SCRATCH/tokens"
MAIN=$(nm "$FIX/crash" | awk '/ T main$/ { print $1 }')
# The first unit's DWARF version set to 99.
python3 - "$FIX/crash.debug" "$SCRATCH/corrupt.debug" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
sec = lambda i: struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
stroff = sec(shstrndx)[4]
for i in range(shnum):
    name, _, _, _, off, _ = sec(i)
    if data[stroff + name:].split(b"\0", 1)[0] == b".debug_info":
        struct.pack_into("<H", data, off + 4, 99)
open(sys.argv[2], "wb").write(data)
PY
dil_start A --data "$SCRATCH/a" --token-file "$SCRATCH/tokens"
put() { curl -s -o "$SCRATCH/body" -w '%{http_code}' -T "$1" -H "Authorization: Bearer s3cret-token" \
	"$A_URL/buildid/$FIX_ID/debuginfo"; }
sym() {
	curl -s -X POST -H 'Content-Type: application/json' --data-binary \
		"{\"requests\":[{\"build_id\":\"$FIX_ID\",\"addresses\":[\"0x$MAIN\"]}]}" "$A_URL/symbolize"
}
[[ $(put "$SCRATCH/corrupt.debug") == 20[01] ]] && ok failure_upload_accepted \
	|| fail failure_upload_accepted "$(cat "$SCRATCH/body")"
sym >"$SCRATCH/r1"
grep -q '"error"' "$SCRATCH/r1" && ok failure_reported || fail failure_reported "$(cat "$SCRATCH/r1")"
f1=$(metric "$A_URL" symbolize_index_build_failures_total)
sym >"$SCRATCH/r2"
f2=$(metric "$A_URL" symbolize_index_build_failures_total)
cmp -s "$SCRATCH/r1" "$SCRATCH/r2" && ok failure_same_answer || fail failure_same_answer "$(cat "$SCRATCH/r2")"
[[ $f1 == 1 && $f2 == 1 ]] && ok failure_not_rebuilt || fail failure_not_rebuilt "failures $f1 -> $f2"
[[ $(metric "$A_URL" symbolize_index_failures_cached_total) -ge 1 ]] && ok failure_counted \
	|| fail failure_counted
sleep 1.1 # the good upload is the newer candidate (rows keep whole seconds)
[[ $(put "$FIX/crash.debug") == 20[01] ]] || fail failure_good_upload "$(cat "$SCRATCH/body")"
sym >"$SCRATCH/r3"
grep -q '"function":"main"' "$SCRATCH/r3" && ok failure_cleared_by_upload \
	|| fail failure_cleared_by_upload "$(cat "$SCRATCH/r3")"
finish
