#!/usr/bin/env bash
# debuginfod-lite beside elfutils' debuginfod and nginx serving the same
# files as static files (the machine's copy limit), same run, same wrk: a
# ~35 KB executable, the ~4 MB libc debuginfo, and a 404.  Median of RUNS
# runs of DURATION seconds each.  Targets: >= 2x elfutils on the small file
# and the 404; >= 90% of nginx on the small file, >= 95% on the 4 MB one.
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=build}"
BIN=$TOP/$BUILD/bin
RUNS=${RUNS:-3} DURATION=${DURATION:-5} CONNS=${CONNS:-16}
for t in wrk debuginfod nginx; do
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
# nginx's workers drop root: let them read the files.
chmod a+rx "$S" "$S/files"; chmod a+r "$S/files"/*
small_id=$(bid "$small")

ours_port=$(free_port) eu_port=$(free_port) nx_port=$(free_port)
# nginx as a plain static file server on loopback, two workers (one a core).
cat >"$S/nginx.conf" <<NGINX
daemon off;
worker_processes 2;
pid $S/nginx.pid;
error_log $S/nginx.err;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	server { listen 127.0.0.1:$nx_port; root $S/files; }
}
NGINX
nginx -c "$S/nginx.conf" -p "$S" 2>"$S/nginx.log" & pids+=($!)
"$BIN/debuginfod-lite" --data "$S/var" --listen 127.0.0.1:$ours_port --scan "$S/files" --rescan 0 \
	2>"$S/ours.log" & pids+=($!)
debuginfod -F -p "$eu_port" -d "$S/eu.sqlite" -t 0 "$S/files" >"$S/eu.log" 2>&1 & pids+=($!)
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == 200 ]]; }
for i in $(seq 300); do
	ready "http://127.0.0.1:$ours_port/buildid/$libc_id/debuginfo" && \
	ready "http://127.0.0.1:$eu_port/buildid/$libc_id/debuginfo" && \
	ready "http://127.0.0.1:$ours_port/buildid/$small_id/executable" && \
	ready "http://127.0.0.1:$eu_port/buildid/$small_id/executable" && \
	ready "http://127.0.0.1:$nx_port/$(basename "$small")" && \
	ready "http://127.0.0.1:$nx_port/$(basename "$big")" && break
	sleep 0.2
done
for u in "$ours_port/buildid/$libc_id/debuginfo" "$eu_port/buildid/$libc_id/debuginfo" \
	 "$nx_port/$(basename "$big")"; do
	ready "http://127.0.0.1:$u" || { echo "bench_debuginfod: http://127.0.0.1:$u is not served"; exit 1; }
done

# run_wrk URL -> "req_per_s p99_ms"
run_wrk() {
	wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1" 2>/dev/null | awk '
		/Requests\/sec/ { rps = $2 }
		$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/,"",v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v *= 1000 }; p99 = v }
		END { printf "%s %s\n", rps, p99 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

status=0
printf "%-22s %11s %8s %11s %8s %11s %8s %9s %9s\n" case "ours req/s" "p99 ms" elfutils "p99 ms" \
	nginx "p99 ms" "/elfutils" "/nginx"
# case / build-ID / kind / nginx path / elfutils target / nginx target (0: none)
for c in "small-35KB executable/$small_id/executable/$(basename "$small")/2.0/0.90" \
	 "debuginfo-4MB/$libc_id/debuginfo/$(basename "$big")/0/0.95" \
	 "404/0123456789abcdef0123456789abcdef01234567/debuginfo/no-such-file/2.0/0"; do
	IFS=/ read -r name id kind nx_path eu_target nx_target <<<"$c"
	: >"$S/o"; : >"$S/e"; : >"$S/n"
	for r in $(seq "$RUNS"); do
		run_wrk "http://127.0.0.1:$ours_port/buildid/$id/$kind" >>"$S/o"
		run_wrk "http://127.0.0.1:$eu_port/buildid/$id/$kind" >>"$S/e"
		run_wrk "http://127.0.0.1:$nx_port/$nx_path" >>"$S/n"
	done
	o=$(cut -d' ' -f1 "$S/o" | median) op=$(cut -d' ' -f2 "$S/o" | median)
	e=$(cut -d' ' -f1 "$S/e" | median) ep=$(cut -d' ' -f2 "$S/e" | median)
	n=$(cut -d' ' -f1 "$S/n" | median) np=$(cut -d' ' -f2 "$S/n" | median)
	# "R x (T ok|MISS)" for a ratio against its target; no target: the ratio.
	judge() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { r = (b > 0 ? a / b : 0);
		if (t > 0) printf "%.2fx(%s %s)", r, t, (r >= t ? "ok" : "MISS"); else printf "%.2fx", r }'; }
	ve=$(judge "$o" "$e" "$eu_target") vn=$(judge "$o" "$n" "$nx_target")
	[[ $ve == *MISS* || $vn == *MISS* ]] && status=1
	printf "%-22s %11s %8s %11s %8s %11s %8s %9s %9s\n" "$name" "$o" "$op" "$e" "$ep" "$n" "$np" "$ve" "$vn"
done
echo "(wrk -t2 -c$CONNS -d${DURATION}s, median of $RUNS; loopback; elfutils $(debuginfod --version 2>&1 | head -1 | awk '{print $NF}'), nginx $(nginx -v 2>&1 | sed 's|.*/||'))"
exit 0
