#!/usr/bin/env bash
# debuginfod-lite vs elfutils' debuginfod, same files, same run, same wrk:
# a ~35 KB executable, the ~4 MB libc debuginfo, and a 404.  Median of
# RUNS runs of DURATION seconds each; targets from DESIGN.md §6.
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=build}"
BIN=$TOP/$BUILD/bin
RUNS=${RUNS:-3} DURATION=${DURATION:-5} CONNS=${CONNS:-16}
for t in wrk debuginfod; do
	command -v $t >/dev/null || { echo "bench_debuginfod: $t not installed (make deps-test)"; exit 1; }
done
S=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$S"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bid() { readelf -n "$1" 2>/dev/null | awk '/Build ID/ { print $3; exit }'; }

# The files: a ~35 KB executable with a build-ID, and libc's debuginfo.
small=""
for f in /usr/bin/*; do
	sz=$(stat -Lc %s "$f" 2>/dev/null || echo 0)
	if (( sz > 30000 && sz < 40000 )) && [[ -n $(bid "$f") ]]; then small=$(readlink -f "$f"); break; fi
done
libc_id=$(bid "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)")
big=/usr/lib/debug/.build-id/${libc_id:0:2}/${libc_id:2}.debug
[[ -n $small && -f $big ]] || { echo "bench_debuginfod: need a ~35 KB executable and libc6-dbg"; exit 1; }
mkdir -p "$S/files"; cp "$small" "$big" "$S/files/"
small_id=$(bid "$small")

ours_port=$(free_port) eu_port=$(free_port)
"$BIN/debuginfod-lite" --data "$S/var" --listen 127.0.0.1:$ours_port --scan "$S/files" --rescan 0 \
	2>"$S/ours.log" & pids+=($!)
debuginfod -F -p "$eu_port" -d "$S/eu.sqlite" -t 0 "$S/files" >"$S/eu.log" 2>&1 & pids+=($!)
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == 200 ]]; }
for i in $(seq 300); do
	ready "http://127.0.0.1:$ours_port/buildid/$libc_id/debuginfo" && \
	ready "http://127.0.0.1:$eu_port/buildid/$libc_id/debuginfo" && \
	ready "http://127.0.0.1:$ours_port/buildid/$small_id/executable" && \
	ready "http://127.0.0.1:$eu_port/buildid/$small_id/executable" && break
	sleep 0.2
done

# run_wrk URL -> "req_per_s p99_ms"
run_wrk() {
	wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1" 2>/dev/null | awk '
		/Requests\/sec/ { rps = $2 }
		$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/,"",v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v *= 1000 }; p99 = v }
		END { printf "%s %s\n", rps, p99 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf "%-22s %12s %10s %12s %10s %8s %8s\n" case "ours req/s" "p99 ms" "elfutils" "p99 ms" ratio target
status=0
for c in "small-35KB executable/$small_id/executable/2.0" "debuginfo-4MB/$libc_id/debuginfo/1.2" \
	 "404/0123456789abcdef0123456789abcdef01234567/debuginfo/2.0"; do
	IFS=/ read -r name id kind target <<<"$c"
	: >"$S/o" ; : >"$S/e"
	for r in $(seq "$RUNS"); do
		run_wrk "http://127.0.0.1:$ours_port/buildid/$id/$kind" >>"$S/o"
		run_wrk "http://127.0.0.1:$eu_port/buildid/$id/$kind" >>"$S/e"
	done
	o=$(cut -d' ' -f1 "$S/o" | median) op=$(cut -d' ' -f2 "$S/o" | median)
	e=$(cut -d' ' -f1 "$S/e" | median) ep=$(cut -d' ' -f2 "$S/e" | median)
	ratio=$(awk -v a="$o" -v b="$e" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t ? "ok" : "MISS") }')
	[[ $verdict == ok ]] || status=1
	printf "%-22s %12s %10s %12s %10s %8s %7sx %s\n" "$name" "$o" "$op" "$e" "$ep" "${ratio}x" "$target" "$verdict"
done
echo "(wrk -t2 -c$CONNS -d${DURATION}s, median of $RUNS; loopback; elfutils $(debuginfod --version 2>&1 | head -1 | awk '{print $NF}'))"
exit 0
