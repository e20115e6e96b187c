#!/usr/bin/env bash
# The cluster beside a single node, same run, same machine:
#  1. two replicas (PostgreSQL + Ceph RGW) behind nginx with warm local
#     caches, against one node (sqlite + local blobs) served directly: wrk on
#     a ~35 KB executable and on the 404 path.  Target: >= 80% of the single
#     node's req/s.  Beside it, what the nginx hop itself costs on this
#     machine: the single node behind the same nginx, and a static nginx
#     serving the same bytes behind it (the most any upstream gets through
#     this proxy here, where client, proxy and servers share two cores).
#  2. a cold fetch from RGW, the first request after the replica's cache lost
#     the blob, p50 and p99 over COLD requests, for the 35 KB executable and
#     the ~4 MB libc debuginfo; the single node's (warm, local file) beside.
#     Target: 4 MB p50 <= 50 ms.
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=build}"
BIN=$TOP/$BUILD/bin
RUNS=${RUNS:-3} DURATION=${DURATION:-5} CONNS=${CONNS:-16} COLD=${COLD:-40}
PARTS=${PARTS:-warm,cold} # which measurements to run
. "$TOP/tests/cluster/lib.sh"
missing=$(cluster_missing)
[[ -z $missing ]] || { echo "bench_cluster: not installed: $missing (make deps-test)"; exit 1; }
command -v wrk >/dev/null || { echo "bench_cluster: wrk not installed (make deps-test)"; exit 1; }
S=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null
      [[ -s $S/static/nginx.pid ]] && kill -QUIT "$(cat "$S/static/nginx.pid")" 2>/dev/null
      nginx_stop "$S/nginx"; nginx_stop "$S/nginx-single"; nginx_stop "$S/nginx-static"
      pg_stop "$S/pg"; rgw_stop "$S/rgw"; rm -rf "$S"' EXIT
bid() { readelf -n "$1" 2>/dev/null | awk '/Build ID/ { print $3; exit }'; }

small=""
for f in /usr/bin/*; do
	sz=$(stat -Lc %s "$f" 2>/dev/null || echo 0)
	if ((sz > 30000 && sz < 40000)) && [[ -n $(bid "$f") ]]; then small=$(readlink -f "$f"); break; fi
done
libc_id=$(bid "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)")
big=/usr/lib/debug/.build-id/${libc_id:0:2}/${libc_id:2}.debug
[[ -n $small && -f $big ]] || { echo "bench_cluster: need a ~35 KB executable and libc6-dbg"; exit 1; }
small_id=$(bid "$small")

rgw_start "$S/rgw" || { echo "bench_cluster: RGW did not start"; exit 1; }
pg_start "$S/pg" || { echo "bench_cluster: PostgreSQL did not start"; exit 1; }
. "$S/rgw/env"; . "$S/pg/env"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
echo bench-token >"$S/tokens"

declare -A PORT
start() { # NAME ARGS...
	local n=$1; shift
	"$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$S/$n.port" --data "$S/$n" \
		--token-file "$S/tokens" --max-upload 20000000 "$@" 2>"$S/$n.log" &
	pids+=($!)
	local i
	for i in $(seq 100); do [[ -s $S/$n.port ]] && break; sleep 0.1; done
	[[ -s $S/$n.port ]] || { echo "bench_cluster: $n did not start: $(tail -2 "$S/$n.log")"; exit 1; }
	PORT[$n]=$(cat "$S/$n.port")
}
CLUSTER=(--db "$PG_URL" --blobs s3://dil-bench --s3-endpoint "$S3_ENDPOINT" --cache-quota 1000000000)
start single
start A "${CLUSTER[@]}"
start B "${CLUSTER[@]}"
# The cold replica keeps no artifact bytes in memory (--memory-cache 0), so
# that every request after its disk cache lost the blob goes to RGW.
start cold "${CLUSTER[@]}" --memory-cache 0
nginx_port=$(cluster_free_port)
nginx_start "$S/nginx" "$nginx_port" "127.0.0.1:${PORT[A]}" "127.0.0.1:${PORT[B]}" ||
	{ echo "bench_cluster: nginx did not start"; exit 1; }
# The references for the hop: the same proxy in front of the single node,
# and in front of a static nginx that serves the same bytes (404 for the
# rest) with sendfile, one worker like the proxy.
mkdir -p "$S/static/www/buildid/$small_id" "$S/static/log"
cp "$small" "$S/static/www/buildid/$small_id/executable"
chmod -R a+rX "$S/static"
static_port=$(cluster_free_port)
cat >"$S/static/nginx.conf" <<CONF
$([[ $(id -u) == 0 ]] && echo "user root;")
worker_processes 1;
pid $S/static/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    server { listen 127.0.0.1:$static_port; root $S/static/www; }
}
CONF
nginx -c "$S/static/nginx.conf" -p "$S/static" -e "$S/static/log/error.log" ||
	{ echo "bench_cluster: static nginx did not start"; exit 1; }
nginx_single_port=$(cluster_free_port) nginx_static_port=$(cluster_free_port)
nginx_start "$S/nginx-single" "$nginx_single_port" "127.0.0.1:${PORT[single]}" &&
nginx_start "$S/nginx-static" "$nginx_static_port" "127.0.0.1:$static_port" ||
	{ echo "bench_cluster: reference nginx did not start"; exit 1; }
put() { curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer bench-token' -T "$2" "$1"; }
for n in single A; do
	c1=$(put "http://127.0.0.1:${PORT[$n]}/buildid/$small_id/executable" "$small")
	c2=$(put "http://127.0.0.1:${PORT[$n]}/buildid/$libc_id/debuginfo" "$big")
	[[ $c1 == 201 && $c2 == 201 ]] || { echo "bench_cluster: uploads to $n: $c1 $c2"; exit 1; }
done
# Warm both replicas' caches (B has never seen the blobs).
for n in A B; do
	for k in "$small_id/executable" "$libc_id/debuginfo"; do
		curl -s -o /dev/null "http://127.0.0.1:${PORT[$n]}/buildid/$k"
	done
done

run_wrk() { # URL -> req/s
	wrk -t2 -c"$CONNS" -d"${DURATION}s" "$1" 2>/dev/null | awk '/Requests\/sec/ { print $2 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
status=0
[[ $PARTS == *warm* ]] && {
echo "1. warm: 2 replicas behind nginx vs one node (wrk -t2 -c$CONNS -d${DURATION}s, median of $RUNS)"
printf "%-12s %13s %12s %6s %-7s | %13s %6s | %13s %6s\n" case "cluster req/s" "single req/s" ratio "(0.80)" \
	"single+nginx" ratio "static+nginx" "/single"
for c in "small-35KB/$small_id/executable" "404/0123456789abcdef0123456789abcdef01234567/debuginfo"; do
	IFS=/ read -r name id kind <<<"$c"
	: >"$S/c"; : >"$S/s"; : >"$S/sn"; : >"$S/st"
	for _ in $(seq "$RUNS"); do
		run_wrk "http://127.0.0.1:$nginx_port/buildid/$id/$kind" >>"$S/c"
		run_wrk "http://127.0.0.1:${PORT[single]}/buildid/$id/$kind" >>"$S/s"
		run_wrk "http://127.0.0.1:$nginx_single_port/buildid/$id/$kind" >>"$S/sn"
		run_wrk "http://127.0.0.1:$nginx_static_port/buildid/$id/$kind" >>"$S/st"
	done
	cl=$(median <"$S/c") si=$(median <"$S/s") sn=$(median <"$S/sn") st=$(median <"$S/st")
	verdict=$(awk -v a="$cl" -v b="$si" 'BEGIN { r = b > 0 ? a / b : 0; printf "%.2f %s", r, (r >= 0.8 ? "ok" : "MISS") }')
	[[ $verdict == *MISS* ]] && status=1
	rsn=$(awk -v a="$cl" -v b="$sn" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	rst=$(awk -v a="$st" -v b="$si" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	printf "%-12s %13s %12s %6s %-7s | %13s %6s | %13s %6s\n" "$name" "$cl" "$si" ${verdict} "$sn" "$rsn" "$st" "$rst"
done
echo "(ratio: cluster / single; then the cluster against the single node behind the same nginx, and a"
echo " static nginx behind it against the single node: the share of the single node's rate any upstream keeps"
echo " through the hop on this machine)"
}

# 2. Cold: before each request the replica's cached copy is removed, so the
# blob comes from RGW (download, SHA-256 check, into the cache, served).
cold_times() { # URL CACHEFILE -> one time_total per line (ms)
	local i
	for i in $(seq "$COLD"); do
		[[ -n $2 ]] && rm -f "$2"
		curl -s -o /dev/null -w '%{time_total}\n' "$1" | awk '{ printf "%.2f\n", $1 * 1000 }'
	done
}
pct() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print a[i] }'; }
[[ $PARTS == *cold* ]] && {
echo "2. cold fetch from RGW (first request after the cache lost the blob; $COLD requests each, ms)"
printf "%-18s %10s %10s %14s %s\n" case "cold p50" "cold p99" "single p50" "target"
for c in "35KB/$small_id/executable/$small" "4MB/$libc_id/debuginfo/$big"; do
	IFS=/ read -r name id kind _ <<<"$c"
	u=http://127.0.0.1:${PORT[cold]}/buildid/$id/$kind
	curl -s -o "$S/first" "$u"
	sha=$(sha256sum <"$S/first" | cut -c1-64)
	cf=$S/cold/cache/blobs/${sha:0:2}/${sha:2}
	[[ -f $cf ]] || { echo "bench_cluster: no cache file $cf"; exit 1; }
	cold_times "$u" "$cf" >"$S/t"
	cold_times "http://127.0.0.1:${PORT[single]}/buildid/$id/$kind" "" >"$S/ts"
	p50=$(pct 50 <"$S/t") p99=$(pct 99 <"$S/t") s50=$(pct 50 <"$S/ts")
	target=""
	if [[ $name == 4MB ]]; then
		target=$(awk -v p="$p50" 'BEGIN { print (p <= 50 ? "<= 50 ms ok" : "<= 50 ms MISS") }')
		[[ $target == *MISS* ]] && status=1
	fi
	printf "%-18s %10s %10s %14s %s\n" "$name" "$p50" "$p99" "$s50" "$target"
done
}
misses=$(curl -s "http://127.0.0.1:${PORT[cold]}/metrics" | awk '$1 == "blob_cache_misses_total" { print $2 }')
echo "(cold replica: $misses cache misses; nginx $(nginx -v 2>&1 | sed 's|.*/||'), Ceph RGW memstore, PostgreSQL 15, loopback)"
exit 0
