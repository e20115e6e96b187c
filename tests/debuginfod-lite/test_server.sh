#!/usr/bin/env bash
# debuginfod-lite against real clients: debuginfod-find returns files
# byte-identical to libc6-dbg's and the system's; sources, sections, HEAD,
# Range, MAXSIZE, hostile paths, many connections, slow clients, SIGTERM.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup

LIBC_DEBUG=/usr/lib/debug/.build-id/${LIBC_ID:0:2}/${LIBC_ID:2}.debug
if [[ ! -f $LIBC_DEBUG ]]; then skip server "libc6-dbg is not installed"; finish; fi

# The fixture's sources are served from the source tree (a --source-root).
dil_start A --data "$SCRATCH/data" --scan /usr/lib/debug --scan "$LIBC" --scan "$FIX" \
	--source-root "$TOP/tests/fixtures" --rescan 0 --conn-timeout 2
export DEBUGINFOD_URLS=$A_URL
wait_for "$A_URL/buildid/$LIBC_ID/debuginfo" && wait_for "$A_URL/buildid/$FIX_ID/executable" \
	|| fail scan "scan did not index libc"

# --- real client: debuginfod-find, byte-identical ---
got=$(debuginfod-find debuginfo "$LIBC_ID" 2>&1)
check find_libc_debuginfo cmp "$got" "$LIBC_DEBUG"
got=$(debuginfod-find executable "$LIBC_ID" 2>&1)
check find_libc_executable cmp "$got" "$LIBC"
# a few more libc6-dbg debug files, and a dwz supplementary file by its own ID
n=0 bad=0
for f in $(ls /usr/lib/debug/.build-id/*/*.debug | sort | awk 'NR % 97 == 1' | head -6); do
	id=$(basename "$(dirname "$f")")$(basename "$f" .debug)
	got=$(debuginfod-find debuginfo "$id" 2>/dev/null) && cmp -s "$got" "$f" || bad=$((bad + 1))
	n=$((n + 1))
done
[[ $bad == 0 && $n -gt 0 ]] && ok find_more_debug_files || fail find_more_debug_files "$bad of $n differ"
dwz=$(ls /usr/lib/debug/.dwz/*/* 2>/dev/null | head -1)
if [[ -n $dwz ]]; then
	dwz_id=$(build_id_of "$dwz")
	got=$(debuginfod-find debuginfo "$dwz_id" 2>&1)
	check find_dwz_supplementary cmp "$got" "$dwz"
else
	skip find_dwz_supplementary "no dwz file under /usr/lib/debug/.dwz"
fi
got=$(debuginfod-find source "$FIX_ID" "$TOP/tests/fixtures/debuginfod-lite/crash.c" 2>&1)
check find_source cmp "$got" "$TOP/tests/fixtures/debuginfod-lite/crash.c"
got=$(debuginfod-find source "$FIX_ID" "$TOP/tests/fixtures/debuginfod-lite/crash_util.h" 2>&1)
check find_source_header cmp "$got" "$TOP/tests/fixtures/debuginfod-lite/crash_util.h"
[[ $(http_code "$A_URL/buildid/$FIX_ID/source/etc/passwd") == 404 ]] \
	&& ok source_not_in_dwarf_404 || fail source_not_in_dwarf_404
objcopy --dump-section .debug_line="$SCRATCH/line.want" "$FIX/crash"
curl -s -o "$SCRATCH/line.got" "$A_URL/buildid/$FIX_ID/section/.debug_line"
check section_debug_line cmp "$SCRATCH/line.got" "$SCRATCH/line.want"
got=$(debuginfod-find section "$FIX_ID" .debug_line 2>&1)
check find_section cmp "$got" "$SCRATCH/line.want"
[[ $(http_code "$A_URL/buildid/$FIX_ID/section/.no_such") == 404 ]] && ok section_missing_404 \
	|| fail section_missing_404

# --- headers, HEAD, Range, MAXSIZE ---
hdr=$(curl -s -D - -o /dev/null "$A_URL/buildid/$LIBC_ID/executable" | tr -d '\r')
size=$(stat -c %s "$LIBC")
grep -qx "X-DEBUGINFOD-SIZE: $size" <<<"$hdr" && grep -qx "X-DEBUGINFOD-FILE: $LIBC" <<<"$hdr" \
	&& grep -qi '^Last-Modified: ' <<<"$hdr" && grep -qx 'Content-Type: application/octet-stream' <<<"$hdr" \
	&& ok elfutils_headers || fail elfutils_headers "$hdr"
hdr=$(curl -s -I "$A_URL/buildid/$LIBC_ID/executable" | tr -d '\r')
grep -q '^HTTP/1.1 200' <<<"$hdr" && grep -qx "Content-Length: $size" <<<"$hdr" && ok head \
	|| fail head "$hdr"
curl -s -r 1000-1999 -o "$SCRATCH/range" -w '%{http_code}' "$A_URL/buildid/$LIBC_ID/executable" >"$SCRATCH/code"
dd if="$LIBC" of="$SCRATCH/range.want" bs=1000 skip=1 count=1 status=none
[[ $(cat "$SCRATCH/code") == 206 ]] && cmp -s "$SCRATCH/range" "$SCRATCH/range.want" && ok range_206 \
	|| fail range_206 "code $(cat "$SCRATCH/code")"
[[ $(http_code -r "$((size + 10))-" "$A_URL/buildid/$LIBC_ID/executable") == 416 ]] && ok range_416 \
	|| fail range_416
[[ $(http_code -H 'X-DEBUGINFOD-MAXSIZE: 1000' "$A_URL/buildid/$LIBC_ID/executable") == 406 ]] \
	&& ok maxsize_406 || fail maxsize_406
DEBUGINFOD_MAXSIZE=1000 debuginfod-find -v executable "$FIX_ID" >/dev/null 2>&1 && \
	fail maxsize_client "client accepted a file over its max size" || ok maxsize_client
[[ $(http_code "$A_URL/buildid/0123456789abcdef0123456789abcdef01234567/debuginfo") == 404 ]] \
	&& ok unknown_404 || fail unknown_404
[[ $(http_code "$A_URL/") == 200 ]] && ok root || fail root

# --- hostile requests: 4xx, nothing touched ---
before=$(find "$SCRATCH/data" -type f | sort | md5sum)
bad=""
long=$(head -c 6000 /dev/zero | tr '\0' a)
for u in "/buildid/../../etc/passwd" "/buildid/$FIX_ID/source/../../../../etc/passwd" \
	"/buildid/$FIX_ID/source/%2e%2e/%2e%2e/etc/passwd" "/buildid/$FIX_ID/source/..%2f..%2fetc%2fpasswd" \
	"/buildid/ABCDEF/debuginfo" "/buildid/abc/debuginfo" "/buildid/zz/debuginfo" \
	"/buildid/$FIX_ID/section/../x" "/buildid/$FIX_ID/nonsense" "/buildid/$long/debuginfo" \
	"/buildid/$FIX_ID/source/$long" "/buildid/$(head -c 300 /dev/zero | tr '\0' a)/debuginfo"; do
	c=$(http_code "$A_URL$u")
	[[ $c == 4?? ]] || bad+=" ${u:0:60}=$c"
done
[[ -z $bad ]] && ok hostile_paths_4xx || fail hostile_paths_4xx "$bad"
[[ $(http_code -X POST "$A_URL/buildid/$FIX_ID/debuginfo") == 405 ]] && ok wrong_method_405 \
	|| fail wrong_method_405
after=$(find "$SCRATCH/data" -type f | sort | md5sum)
[[ $before == "$after" ]] && ok hostile_touch_nothing || fail hostile_touch_nothing

# --- 1000 concurrent connections, then a slow client timed out ---
python3 - "$A_PORT" "$FIX_ID" >"$SCRATCH/conc" 2>&1 <<'PY'
import socket, sys, selectors
port, bid = int(sys.argv[1]), sys.argv[2]
req = f"GET /buildid/{bid}/executable HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
socks = []
for i in range(1000):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    socks.append(s)
for s in socks:
    s.sendall(req)
good = 0
for s in socks:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 200"):
        good += 1
    s.close()
print(good)
PY
[[ $(tail -1 "$SCRATCH/conc") == 1000 ]] && ok concurrent_1000 || fail concurrent_1000 "$(tail -2 "$SCRATCH/conc")"
python3 - "$A_PORT" >"$SCRATCH/slow" 2>&1 <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /buildid/")   # never finishes the request line
s.settimeout(20)
try:
    print("closed" if s.recv(100) is not None else "open")
except socket.timeout:
    print("open")
PY
[[ $(cat "$SCRATCH/slow") == closed ]] && ok slowloris_timed_out || fail slowloris_timed_out "$(cat "$SCRATCH/slow")"

# --- metrics and graceful stop ---
m=$(curl -s "$A_URL/metrics")
grep -q '^http_responses_total{route="buildid",code="200"} [1-9]' <<<"$m" \
	&& grep -q 'http_request_duration_seconds_bucket{route="buildid",le="+Inf"}' <<<"$m" \
	&& ok metrics || fail metrics
kill -TERM "$A_PID"; wait "$A_PID"; rc=$?
[[ $rc == 0 ]] && grep -q 'msg="stopped"' "$SCRATCH/A.log" && ok sigterm_graceful || fail sigterm_graceful "rc=$rc"
SERVERS=()
finish
