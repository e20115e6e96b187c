#!/usr/bin/env bash
# Rescan on change (inotify): a file copied into a scanned directory, or
# into a directory created there later, is served within seconds without a
# periodic rescan; --no-watch shows the same copy is not seen.  Slow-dribble
# clients (one byte a second, in the headers or in a /symbolize body) are
# cut at the request deadline although they never go idle.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
mkdir -p "$SCRATCH/w" "$SCRATCH/nw"
dil_start A --data "$SCRATCH/a" --scan "$SCRATCH/w" --rescan 0 --request-deadline 3
start_server B --data "$SCRATCH/b" --scan "$SCRATCH/nw" --rescan 0 --no-watch || fail server_b
served() { # URL: HEAD 200 within ~5 s
	local i
	for i in $(seq 50); do
		[[ $(http_code -I "$1") == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}
sleep 0.5 # initial (empty) scans
[[ $(http_code -I "$A_URL/buildid/$FIX_ID/executable") == 404 ]] && ok watch_absent_before \
	|| fail watch_absent_before
cp "$FIX/crash" "$SCRATCH/w/crash"
cp "$FIX/crash" "$SCRATCH/nw/crash"
served "$A_URL/buildid/$FIX_ID/executable" && ok watch_copy_served || fail watch_copy_served
curl -s -o "$SCRATCH/got" "$A_URL/buildid/$FIX_ID/debuginfo"
check watch_copy_identical cmp "$SCRATCH/got" "$FIX/crash"
served "$B_URL/buildid/$FIX_ID/executable" && fail no_watch_control "seen without inotify" \
	|| ok no_watch_control
# A directory made after start, then a file moved into it.
mkdir -p "$SCRATCH/w/sub/deeper"
cp "$FIX/crash.debug" "$SCRATCH/crash.debug.tmp"
sleep 0.3 # the watcher adds the new directories
mv "$SCRATCH/crash.debug.tmp" "$SCRATCH/w/sub/deeper/crash.debug"
rm "$SCRATCH/w/crash"
ok_sub=0
for i in $(seq 50); do
	curl -s -D "$SCRATCH/h" -o /dev/null "$A_URL/buildid/$FIX_ID/debuginfo"
	grep -q "sub/deeper/crash.debug" "$SCRATCH/h" && { ok_sub=1; break; }
	sleep 0.1
done
[[ $ok_sub == 1 ]] && ok watch_new_subdir_move || fail watch_new_subdir_move "$(tr -d '\r' <"$SCRATCH/h" | grep -i x-debuginfod-file)"

# Slow dribble: never idle for long, but never done.
python3 - "$A_PORT" >"$SCRATCH/slow.res" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def dribble(name, head, tail, limit=20):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    sent = 0
    try:
        for b in tail[:limit]:
            time.sleep(1)
            s.sendall(bytes([b]))
            sent += 1
        s.settimeout(5)
        data = s.recv(100)  # the server must have given up on us by now
        print(f"ok {name}" if data == b"" or b" 408 " in data[:20] else f"FAIL {name}: answered {data[:40]!r}")
    except (BrokenPipeError, ConnectionResetError):
        print(f"ok {name}")
    except socket.timeout:
        print(f"FAIL {name}: still connected after {sent} bytes")
    finally:
        s.close()
dribble("slow_headers_cut", b"GET /buildid/", b"0123456789abcdef/debuginfo HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 40)
dribble("slow_symbolize_body_cut",
        b"POST /symbolize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", b"{" + b" " * 99)
PY
while IFS= read -r l; do echo "$l"; [[ $l == FAIL* ]] && _check_failed=1; done <"$SCRATCH/slow.res"
[[ $(metric "$A_URL" request_deadline_cuts_total) -ge 2 ]] && ok deadline_metric \
	|| fail deadline_metric "$(metric "$A_URL" request_deadline_cuts_total)"
# A normal client on a kept-alive connection is unaffected.
[[ $(curl -s -o /dev/null -o /dev/null -w '%{http_code}' "$A_URL/" "$A_URL/metrics" | tr -d '\n') == 200200 ]] \
	&& ok deadline_normal_client || fail deadline_normal_client
finish
