#!/usr/bin/env bash
# make cluster: the example cluster on this machine, until Ctrl-C.
# PostgreSQL 15 (metadata), Ceph RGW (blobs, in memory), two debuginfod-lite
# replicas over them, nginx in front on 127.0.0.1:$CLUSTER_PORT (8003).
# Everything listens on 127.0.0.1 and lives in one temporary directory that
# is removed at the end: a cluster to try, not to keep (docs/cluster.md).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/bin
PORT=${CLUSTER_PORT:-8003}
. tests/cluster/lib.sh
missing=$(cluster_missing)
[[ -z $missing ]] || { echo "cluster: not installed: $missing (make deps-cluster)" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	echo "cluster: 127.0.0.1:$PORT is taken (CLUSTER_PORT=…)" >&2; exit 1
fi
S=$(mktemp -d /tmp/dil-cluster.XXXXXX)
pids=()
cleanup() {
	trap - EXIT INT TERM
	echo "cluster: stopping"
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	nginx_stop "$S/nginx"; pg_stop "$S/pg"; rgw_stop "$S/rgw"
	rm -rf "$S"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "cluster: starting Ceph RGW and PostgreSQL in $S"
rgw_start "$S/rgw" || { echo "cluster: RGW did not start (logs: $S/rgw/log)" >&2; exit 1; }
pg_start "$S/pg" || { echo "cluster: PostgreSQL did not start" >&2; exit 1; }
. "$S/rgw/env"; . "$S/pg/env"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S/tokens"; echo >>"$S/tokens"
urls=()
for n in 1 2; do
	"$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$S/r$n.port" --data "$S/r$n" \
		--db "$PG_URL" --blobs s3://debuginfod --s3-endpoint "$S3_ENDPOINT" \
		--cache-quota 1000000000 --token-file "$S/tokens" 2>"$S/r$n.log" &
	pids+=($!)
	for _ in $(seq 100); do [[ -s $S/r$n.port ]] && break; sleep 0.1; done
	[[ -s $S/r$n.port ]] || { echo "cluster: replica $n did not start: $(tail -2 "$S/r$n.log")" >&2; exit 1; }
	urls+=("127.0.0.1:$(cat "$S/r$n.port")")
done
nginx_start "$S/nginx" "$PORT" "${urls[@]}" || { echo "cluster: nginx did not start" >&2; exit 1; }
cat <<MSG
cluster: up.  nginx http://127.0.0.1:$PORT -> replicas ${urls[*]}
  metadata  $PG_URL
  blobs     s3://debuginfod at $S3_ENDPOINT (Ceph RGW)
  logs      $S/r1.log $S/r2.log
Try:
  build/bin/debuginfod-upload --server http://127.0.0.1:$PORT --token $(head -1 "$S/tokens") /usr/bin/ls
  DEBUGINFOD_URLS=http://127.0.0.1:$PORT debuginfod-find executable $(readelf -n /usr/bin/ls | awk '/Build ID/ { print $3; exit }')
  curl http://127.0.0.1:$PORT/readyz
Ctrl-C stops everything and removes $S.
MSG
wait -n "${pids[@]}"
echo "cluster: a replica exited: $(tail -2 "$S"/r*.log)" >&2
exit 1
