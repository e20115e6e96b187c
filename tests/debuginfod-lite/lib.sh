# Helpers for the debuginfod-lite test scripts (source after check.sh).
# Servers listen on 127.0.0.1 on a port the kernel picks, and are stopped
# by the EXIT trap (or by their own `timeout`).
SERVERS=()
stop_servers() {
	local p
	for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${SERVERS[@]}"; do wait "$p" 2>/dev/null; done
	SERVERS=()
}
dil_setup() {
	scratch
	trap 'stop_servers; rm -rf "$SCRATCH"' EXIT
	unset DEBUGINFOD_URLS
	export DEBUGINFOD_CACHE_PATH=$SCRATCH/client-cache
	FIX=$FIXTURES/debuginfod-lite
}
# start_server NAME ARGS...: sets NAME_PORT, NAME_PID, NAME_URL.
start_server() {
	local name=$1; shift
	rm -f "$SCRATCH/$name.port"
	timeout -s TERM 300 "$BIN/debuginfod-lite" --listen 127.0.0.1:0 \
		--port-file "$SCRATCH/$name.port" "$@" 2>>"$SCRATCH/$name.log" &
	local pid=$!
	SERVERS+=("$pid")
	local i
	for i in $(seq 100); do
		[[ -s $SCRATCH/$name.port ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ ! -s $SCRATCH/$name.port ]]; then
		echo "server $name did not start:"; cat "$SCRATCH/$name.log"; return 1
	fi
	printf -v "${name}_PORT" '%s' "$(cat "$SCRATCH/$name.port")"
	printf -v "${name}_PID" '%s' "$pid"
	printf -v "${name}_URL" 'http://127.0.0.1:%s' "$(cat "$SCRATCH/$name.port")"
}
# dil_start NAME ARGS...: start_server, and end the test with one FAIL that
# names the server and its last log lines when it does not start.  Every
# test script starts its servers this way.
dil_start() {
	local name=$1
	start_server "$@" && return 0
	fail "server_start_$name" "$(tail -2 "$SCRATCH/$name.log" 2>/dev/null | tr '\n' ' ')"
	finish
}
# wait_for URL: until it answers 200 (the initial scan runs in background).
wait_for() {
	local i
	for i in $(seq 300); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' -I "$1") == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --path-as-is "$@"; }
build_id_of() { readelf -n "$1" | awk '/Build ID/ { print $3; exit }'; }
# metric URL NAME{labels}: the value, 0 when absent.
metric() {
	curl -s "$1/metrics" | awk -v k="$2" '$1 == k { print $2; f=1 } END { if (!f) print 0 }'
}
# What most scripts serve: this machine's libc and the crash fixture.
LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
LIBC_ID=$(build_id_of "$LIBC")
FIX_ID=$(build_id_of "$FIXTURES/debuginfod-lite/crash" 2>/dev/null)
