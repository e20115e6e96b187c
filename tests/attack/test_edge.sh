#!/usr/bin/env bash
# The HTTP edge as a hostile client sees it: who may read (--read-token-file,
# --private), clean output (non-UTF-8 DWARF file names, upload and scanned
# file names with control bytes), control bytes in paths, request smuggling
# (Content-Length with Transfer-Encoding, two Content-Lengths), per-client
# connection caps, range-checked and repeated query parameters.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
UP=up-secret-0123 RD=rd-secret-4567
echo "$UP" >"$SCRATCH/up.tok"
echo "$RD" >"$SCRATCH/rd.tok"

# A binary whose DWARF names a file with bytes that are not UTF-8, and a
# scanned file whose name has control bytes and an invalid byte.
mkdir -p "$SCRATCH/scan"
printf '#line 1 "bad\xff\xfe\xc3(.c"\nint f(int x) { return x * 3; }\nint main(int c, char **v) { (void)v; return f(c); }\n' \
	>"$SCRATCH/bad.c"
gcc -g -O0 -Wl,--build-id=sha1 -o "$SCRATCH/scan/badutf" "$SCRATCH/bad.c" || { fail fixture gcc; finish; }
BAD_ID=$(build_id_of "$SCRATCH/scan/badutf")
F_ADDR=$(nm "$SCRATCH/scan/badutf" | awk '$3 == "f" { print $1 }')
CTL_NAME=$'scan\x01\x7f\xff'
cp "$FIX/crash.stripped" "$SCRATCH/scan/$CTL_NAME"
M_ADDR=$(nm "$FIX/crash" | awk '$3 == "main" { print $1 }')

# A: only flags the server has always had (so the edge checks also run
# against older builds).
dil_start A --data "$SCRATCH/a" --token-file "$SCRATCH/up.tok" --scan "$SCRATCH/scan" \
	--scan "$FIX/crash.debug" --rescan 0
wait_for "$A_URL/buildid/$BAD_ID/debuginfo" && wait_for "$A_URL/buildid/$FIX_ID/executable" \
	|| fail scan_fixtures "$(tail -3 "$SCRATCH/A.log")"

# --- clean output ---
# strict_json FILE: exits 0 when FILE is strict UTF-8 JSON (every line for --lines).
strict_json() {
	python3 - "$@" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
text = data.decode("utf-8")          # strict: raises on any invalid byte
docs = text.splitlines() if len(sys.argv) > 2 else [text]
for d in docs:
    json.loads(d)
PY
}
cat >"$SCRATCH/batch.json" <<JSON
{"requests":[{"build_id":"$BAD_ID","addresses":["0x$F_ADDR"]},
             {"build_id":"$FIX_ID","addresses":["0x$M_ADDR"]}]}
JSON
code=$(curl -s -o "$SCRATCH/batch.out" -w '%{http_code}' --data-binary @"$SCRATCH/batch.json" \
	"$A_URL/symbolize")
if [[ $code == 200 ]] && strict_json "$SCRATCH/batch.out" 2>"$SCRATCH/err" &&
   python3 - "$SCRATCH/batch.out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1], encoding="utf-8"))["results"]
assert len(r) == 2 and all("addresses" in e for e in r), r
f0 = r[0]["addresses"][0]["frames"][0]
assert f0["function"] == "f" and "\ufffd" in f0["file"], f0
assert r[1]["addresses"][0]["frames"][0]["function"] == "main", r[1]
PY
then ok symbolize_non_utf8_dwarf_batch
else fail symbolize_non_utf8_dwarf_batch "HTTP $code $(head -c 300 "$SCRATCH/err") $(head -c 300 "$SCRATCH/batch.out" | cat -v)"
fi
echo "0x$F_ADDR" | "$BIN/symbolize" -e "$SCRATCH/scan/badutf" --json --no-cache >"$SCRATCH/cli.out" 2>&1
strict_json "$SCRATCH/cli.out" --lines 2>/dev/null && grep -q '"f"' "$SCRATCH/cli.out" \
	&& ok symbolize_cli_json_non_utf8 || fail symbolize_cli_json_non_utf8 "$(cat -v "$SCRATCH/cli.out" | head -c 300)"

# An upload named with control bytes and an invalid byte: refused, and
# nothing it or a scanned file named so can break /metadata or headers.
code=$(curl -s -o "$SCRATCH/up.out" -w '%{http_code}' -T "$FIX/crash.debug" \
	-H "Authorization: Bearer $UP" -H "X-Debuginfod-Lite-Filename: up$CTL_NAME" \
	"$A_URL/buildid/$FIX_ID/debuginfo")
[[ $code == 400 ]] && ok upload_filename_control_bytes_400 \
	|| fail upload_filename_control_bytes_400 "HTTP $code $(head -c 200 "$SCRATCH/up.out")"
# debuginfod-upload leaves such a name out rather than fail the upload.
mkdir -p "$SCRATCH/ci"
cp "$FIX/crash.debug" "$SCRATCH/ci/ci$CTL_NAME.debug"
"$BIN/debuginfod-upload" --server "$A_URL" --token-file "$SCRATCH/up.tok" "$SCRATCH/ci/ci$CTL_NAME.debug" \
	>"$SCRATCH/ci.out" 2>&1 && ok upload_tool_bad_name_uploads || fail upload_tool_bad_name_uploads "$(tail -2 "$SCRATCH/ci.out")"
bad=
for q in 'key=glob&value=*' "key=glob&value=$SCRATCH/scan/*"; do
	code=$(curl -s -o "$SCRATCH/meta.out" -w '%{http_code}' "$A_URL/metadata?$q")
	[[ $code == 200 ]] && strict_json "$SCRATCH/meta.out" 2>/dev/null || bad+=" $q:$code"
done
python3 -c 'import json,sys; r=json.load(open(sys.argv[1],encoding="utf-8"))["results"]
assert any(e["file"].endswith("/scan\x01\x7f\ufffd") for e in r), r' "$SCRATCH/meta.out" 2>/dev/null \
	|| bad+=" (scanned name not listed: $(cat -v "$SCRATCH/meta.out" | head -c 300))"
[[ -z $bad ]] && ok metadata_survives_bad_names || fail metadata_survives_bad_names "$bad"
# raw_headers PATH: the status line and headers of GET PATH on A, bytes as sent.
raw_headers() {
	python3 - "$A_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data:
    c = s.recv(65536)
    if not c:
        break
    data += c
head = data.split(b"\r\n\r\n")[0]
sys.stdout.buffer.write(head.replace(b"\r\n", b"\n") + b"\n")
PY
}
CTL_ID=$(build_id_of "$FIX/crash.stripped")
raw_headers "/buildid/$CTL_ID/executable" >"$SCRATCH/hdr"
if grep -q '^HTTP/1.1 200' "$SCRATCH/hdr" && grep -qi '^X-DEBUGINFOD-FILE:' "$SCRATCH/hdr" &&
   ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f\x80-\xff]' "$SCRATCH/hdr"; then
	ok headers_no_control_bytes
else
	fail headers_no_control_bytes "$(cat -v "$SCRATCH/hdr" | tr '\n' ' ' | head -c 400)"
fi

# --- control bytes in paths ---
# raw REQUEST...: send each raw request on its own connection, print the statuses.
raw_status() {
	python3 - "$A_PORT" "$@" <<'PY'
import socket, sys
out = []
for req in sys.argv[2:]:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(req.encode("latin-1").decode("unicode_escape").encode("latin-1"))
    data = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    except (socket.timeout, ConnectionResetError):
        pass
    out.append(data[9:12].decode() or "closed")
print(" ".join(out))
PY
}
paths=("/buildid/$FIX_ID/executable%00.x" "/buildid/%00$FIX_ID/executable" "/metadata%00?key=file&value=x"
       "/%0a" "/buildid/$FIX_ID/source/tmp/a%0d%0ab.c" "/buildid/$FIX_ID/executable%7f"
       "/metadata?key=file&value=a%00b" "/profiles/list?id=1%00")
reqs=()
for p in "${paths[@]}"; do reqs+=("GET $p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); done
reqs+=("GET /buildid/$FIX_ID/exec\\x01utable HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
got=$(raw_status "${reqs[@]}")
want=$(printf '400 %.0s' "${reqs[@]}"); want=${want% }
[[ $got == "$want" ]] && ok path_control_bytes_400 || fail path_control_bytes_400 "got $got"

# --- request smuggling: a second request hidden in the body is never answered ---
smuggle() {
	python3 - "$A_PORT" "$1" <<'PY'
import socket, sys, time
port, which = int(sys.argv[1]), sys.argv[2]
hidden = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
if which == "cl_te":
    body = b"0\r\n\r\n" + hidden
    req = (b"POST /symbolize HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" % 5) + body
elif which == "te_cl":
    req = (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Length: 3\r\n\r\n0\r\n\r\n") + hidden
else:  # two different Content-Lengths
    body = b"{}\r\n" + hidden
    req = (b"POST /symbolize HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(req)
data, closed = b"", False
deadline = time.time() + 5
try:
    while time.time() < deadline:
        c = s.recv(65536)
        if not c:
            closed = True
            break
        data += c
except socket.timeout:
    pass
except ConnectionResetError:
    closed = True
answers = data.count(b"HTTP/1.1 ")
print(data[9:12].decode() or "none", "answers=%d" % answers, "closed" if closed else "open")
PY
}
for k in cl_te te_cl dup_cl; do
	got=$(smuggle $k)
	[[ $got == "400 answers=1 closed" ]] && ok "smuggling_${k}_400_closed" || fail "smuggling_${k}_400_closed" "$got"
done

# --- query parameters: range-checked, single-valued ones once ---
bad=
for q in 'profiles/list?id=99999999999999999999' 'profiles/list?id=1&id=2' 'profiles/list?id=-1' \
	 'profiles/list?id=0x10' 'profiles/list?id=+5' 'profiles/list?from=99999999999999999999' \
	 'profiles/list?from=1&from=2' 'profiles/list?to=1&to=2' 'profiles?symbolize=1&symbolize=0' \
	 'profiles/list?from=10&to=5' 'metadata?key=file&key=glob&value=x' 'metadata?key=file&value=a&value=b'; do
	code=$(http_code "$A_URL/$q")
	[[ $code == 400 ]] || bad+=" $q:$code"
done
[[ $(http_code "$A_URL/profiles/list?id=1") == 200 ]] || bad+=" id=1:$(http_code "$A_URL/profiles/list?id=1")"
[[ -z $bad ]] && ok query_params_checked || fail query_params_checked "$bad"

# --- who may read ---
# B: --read-token-file; artifact reads stay open.
start_server B --data "$SCRATCH/b" --token-file "$SCRATCH/up.tok" --read-token-file "$SCRATCH/rd.tok" \
	--scan "$FIX/crash.debug" --rescan 0 || fail read_server_start "$(tail -2 "$SCRATCH/B.log")"
if [[ -n ${B_URL:-} ]]; then
	wait_for "$B_URL/buildid/$FIX_ID/debuginfo"
	printf '%x 10 jitted_fn\n' 4096 >"$SCRATCH/map.txt"
	sha=$(curl -s -H "Authorization: Bearer $UP" --data-binary @"$SCRATCH/map.txt" "$B_URL/perf-maps" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])' 2>/dev/null)
	echo '{"requests":[]}' >"$SCRATCH/empty.json"
	# code [-X POST ...] URL with each of: no token, wrong, read, upload token.
	for ep in "GET profiles/list" "GET profiles" "GET perf-maps/${sha:-0000}" "POST symbolize"; do
		set -- $ep
		extra=(); [[ $1 == POST ]] && extra=(--data-binary @"$SCRATCH/empty.json")
		res=
		for tok in "" wrong "$RD" "$UP"; do
			h=(); [[ -n $tok ]] && h=(-H "Authorization: Bearer $tok")
			res+=" $(curl -s -o /dev/null -D "$SCRATCH/h" -w '%{http_code}' "${h[@]}" "${extra[@]}" "$B_URL/$2")"
			[[ -z $tok ]] && { grep -qi '^WWW-Authenticate: Bearer' "$SCRATCH/h" || res+="(no WWW-Authenticate)"; }
		done
		case $2 in profiles) want=" 401 401 404 404" ;; *) want=" 401 401 200 200" ;; esac
		name=read_token_${2%%/[0-9a-f]*}; name=${name//[\/-]/_}
		[[ $res == "$want" ]] && ok "$name" || fail "$name" "got$res want$want"
	done
	# Profile labels are answered in JSON: UTF-8 only.
	TOOL=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
	printf '1000 = 1\n' | "$TOOL" make "$SCRATCH/lab.pb.gz" --time 1700000000000000000 \
		--label $'host=h\xff\xfe' --mapping "$FIX_ID" crash
	res="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $UP" \
		-H $'X-Profile-Label: k=v\xff' --data-binary @"$SCRATCH/lab.pb.gz" "$B_URL/profiles")"
	res+=" $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $UP" \
		--data-binary @"$SCRATCH/lab.pb.gz" "$B_URL/profiles")"
	res+=" $(curl -s -o "$SCRATCH/list.out" -w '%{http_code}' -H "Authorization: Bearer $RD" "$B_URL/profiles/list")"
	[[ $res == "400 201 200" ]] && strict_json "$SCRATCH/list.out" 2>/dev/null && ok profile_labels_utf8 \
		|| fail profile_labels_utf8 "$res $(head -c 200 "$SCRATCH/list.out" | cat -v)"
	res="$(http_code "$B_URL/buildid/$FIX_ID/debuginfo") $(http_code "$B_URL/metadata?key=glob&value=*") $(http_code "$B_URL/")"
	[[ $res == "200 200 200" ]] && ok read_token_artifacts_open || fail read_token_artifacts_open "$res"
fi
# C: --private: artifacts, /metadata and /metrics need a token too; / stays open.
start_server C --data "$SCRATCH/c" --read-token-file "$SCRATCH/rd.tok" --private \
	--scan "$FIX/crash.debug" --scan "$FIX/crash.stripped" --rescan 0 || fail private_server_start "$(tail -2 "$SCRATCH/C.log")"
if [[ -n ${C_URL:-} ]]; then
	sleep 1
	A_RD=(-H "Authorization: Bearer $RD")
	res="$(http_code "$C_URL/buildid/$FIX_ID/debuginfo") $(http_code "$C_URL/metadata?key=glob&value=*")"
	res+=" $(http_code "$C_URL/metrics") $(http_code "$C_URL/")"
	res+=" $(http_code "${A_RD[@]}" "$C_URL/buildid/$FIX_ID/debuginfo") $(http_code "${A_RD[@]}" "$C_URL/metrics")"
	[[ $res == "401 401 401 200 200 200" ]] && ok private_needs_token || fail private_needs_token "$res"
	echo "Authorization: Bearer $RD" >"$SCRATCH/headers"
	DEBUGINFOD_URLS=$C_URL DEBUGINFOD_HEADERS_FILE=$SCRATCH/headers debuginfod-find debuginfo "$FIX_ID" \
		>"$SCRATCH/dfind" 2>&1 && ok private_debuginfod_find_headers_file \
		|| fail private_debuginfod_find_headers_file "$(tail -1 "$SCRATCH/dfind")"
	echo "0x$M_ADDR" | "$BIN/symbolize" --build-id "$FIX_ID" --server "$C_URL" --token-file "$SCRATCH/rd.tok" \
		--debug-dir "$SCRATCH/nodebug" --no-cache >"$SCRATCH/symz" 2>&1
	grep -q '^main' "$SCRATCH/symz" && ok private_symbolize_server_token \
		|| fail private_symbolize_server_token "$(head -2 "$SCRATCH/symz")"
fi

# --- connection caps: one client's idle sockets do not stall another client ---
# caps PORT N: N idle sockets from 127.0.0.1, then GET / from 127.0.0.2;
# prints the other client's status line and how many idle sockets were closed.
caps() {
	python3 - "$@" <<'PY'
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
socks = []
for i in range(n):
    s = socket.socket()
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    socks.append(s)
time.sleep(0.5)
o = socket.socket(); o.settimeout(5); o.bind(("127.0.0.2", 0)); o.connect(("127.0.0.1", port))
o.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
try:
    other = o.recv(100)[:12].decode()
except Exception as e:
    other = "error " + str(e).replace(" ", "_")
# Sockets the server closed are readable (EOF or reset); the others idle.
import selectors
sel = selectors.DefaultSelector()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
closed = 0
for key, _ in sel.select(timeout=1):
    try:
        if key.fileobj.recv(1) == b"":
            closed += 1
    except (ConnectionResetError, socket.timeout):
        closed += 1
print(other, "closed=%d" % closed)
PY
}
# The default cap (1024 per client) on server A.
caps "$A_PORT" 1300 >"$SCRATCH/caps0" 2>&1
read -r proto code closed <"$SCRATCH/caps0"
n=${closed#closed=}
[[ "$proto $code" == "HTTP/1.1 200" && $n =~ ^[0-9]+$ && $n -ge 200 ]] && ok caps_default_per_client \
	|| fail caps_default_per_client "$(cat "$SCRATCH/caps0")"
start_server D --data "$SCRATCH/d" --max-connections-per-client 50 --max-connections 4000 \
	|| fail caps_server_start "$(tail -2 "$SCRATCH/D.log")"
if [[ -n ${D_URL:-} ]]; then
	caps "$D_PORT" 400 >"$SCRATCH/caps" 2>&1
	read -r proto code closed <"$SCRATCH/caps"
	[[ "$proto $code" == "HTTP/1.1 200" ]] && ok caps_other_client_served || fail caps_other_client_served "$(cat "$SCRATCH/caps")"
	n=${closed#closed=}
	[[ $n =~ ^[0-9]+$ && $n -ge 300 && $n -le 360 ]] && ok caps_per_client_enforced \
		|| fail caps_per_client_enforced "$(cat "$SCRATCH/caps")"
	m=$(curl -s --interface 127.0.0.2 "$D_URL/metrics")
	grep -q '^connections_refused_total{reason="per_client"} [1-9]' <<<"$m" &&
		grep -q '^connections_max_per_client 50$' <<<"$m" && ok caps_metered \
		|| fail caps_metered "$(grep -i '^connections' <<<"$m" | tr '\n' ' ')"
fi
finish
