# The cluster's parts on loopback, for the tests, the benchmarks and
# `make cluster`: Ceph's RADOS Gateway (one mon, one memstore OSD, radosgw),
# PostgreSQL 15 and nginx.  Source it; every function takes the directory it
# owns, runs its daemons from there on 127.0.0.1 ports it picks, and its
# *_stop removes the directory again.  Nothing touches /etc, /var/lib or
# systemd.
#
#   rgw_start DIR      -> DIR/env: S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION
#   rgw_pause DIR / rgw_resume DIR   (radosgw alone: the store "down")
#   rgw_stop DIR
#   pg_start DIR       -> DIR/env: PG_URL (postgresql://…/dil), PG_PORT
#   pg_pause DIR / pg_resume DIR / pg_stop DIR / pg_freeze DIR / pg_thaw DIR
#   nginx_start DIR PORT UPSTREAM_URL...   (round robin over the replicas)
#   nginx_stop DIR
#   cluster_missing    prints the programs that are not installed

cluster_missing() {
	local p missing=()
	for p in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph \
		/usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl nginx; do
		command -v "$p" >/dev/null 2>&1 || [[ -x $p ]] || missing+=("$(basename "$p")")
	done
	echo "${missing[*]}"
}

# A loopback port nobody listens on (and, with 2, the next one too).
cluster_free_port() {
	local n=${1:-1} p i busy
	for _ in $(seq 200); do
		# Below the ephemeral range (32768-60999), where outgoing
		# connections take their local ports.
		p=$((20000 + RANDOM % 12000))
		busy=0
		for ((i = 0; i < n; i++)); do
			(exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null && busy=1
		done
		((busy)) || { echo "$p"; return 0; }
	done
	return 1
}

_cluster_wait() { # SECONDS CMD...: until CMD succeeds
	local t=$1; shift
	local end=$((SECONDS + t))
	until "$@" >/dev/null 2>&1; do
		((SECONDS >= end)) && return 1
		sleep 0.1
	done
}

# Running, and not a zombie waiting for init to reap it (daemons fork away
# from us, so their exit is not ours to collect).
_cluster_alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[[ -n $state && $state != Z ]]
}

# Signal a daemon named by its pid file, only when its command line names
# our directory (a stale pid file must not hit someone else's process).
_cluster_kill() { # SIGNAL PIDFILE DIR
	local pid
	[[ -s $2 ]] || return 0
	pid=$(cat "$2")
	if _cluster_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$3"; then
		kill "-$1" "$pid" 2>/dev/null
		local i
		for i in $(seq 100); do _cluster_alive "$pid" || break; sleep 0.05; done
		_cluster_alive "$pid" && kill -KILL "$pid" 2>/dev/null
		for i in $(seq 100); do _cluster_alive "$pid" || break; sleep 0.05; done
	fi
	return 0
}

# --- Ceph RGW ---------------------------------------------------------------

_rgw_conf() { # DIR MON_PORT RGW_PORT
	local d=$1
	cat <<CONF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = [v2:127.0.0.1:$2,v1:127.0.0.1:$(($2 + 1))]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $d/run
admin socket = $d/run/\$name.asok
pid file = $d/run/\$name.pid
log file = $d/log/\$name.log
crash dir = $d/crash
keyring = $d/keyring
mon cluster log file = $d/log/cluster.log
# One OSD holds the one copy of everything.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
mgr initial modules =

[mon]
mon data = $d/mon.\$id
# Each pool and crush change is a paxos round, batched for 1 s by default;
# start-up makes about ten of them.
paxos propose interval = 0.05
paxos min wait = 0.01

[osd]
osd data = $d/osd.\$id
# In memory: a test store.  A full memstore OSD blocks writes instead of
# failing them, so it gets room well above what a test writes.
osd objectstore = memstore
memstore device bytes = ${RGW_MEMSTORE_BYTES:-4294967296}

[client.rgw.s3]
rgw frontends = beast endpoint=127.0.0.1:$3 tcp_nodelay=1
# radosgw asks the mon for a "secure" connection by default, which auth=none
# cannot give: allow crc too.
ms mon client mode = crc secure
rgw data = $d/rgw
rgw thread pool size = 64
rgw enable usage log = false
CONF
}

rgw_start() {
	local d=$1 mon rgw
	mkdir -p "$d"/{run,log,crash,mon.a,osd.0,rgw}
	mon=$(cluster_free_port 2) && rgw=$(cluster_free_port 1) || return 1
	_rgw_conf "$d" "$mon" "$rgw" >"$d/ceph.conf"
	local c="$d/ceph.conf"
	echo "$rgw" >"$d/rgw.port"
	monmaptool --create --clobber --fsid "$(awk '$1 == "fsid" { print $3 }' "$c")" \
		--addv a "[v2:127.0.0.1:$mon,v1:127.0.0.1:$((mon + 1))]" "$d/monmap" >/dev/null &&
	ceph-mon -c "$c" -i a --mkfs --monmap "$d/monmap" &&
	ceph-mon -c "$c" -i a &&
	_cluster_wait 60 ceph -c "$c" --connect-timeout 5 mon stat || { rgw_stop "$d" keep; return 1; }
	local uuid id
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(ceph -c "$c" --connect-timeout 10 osd new "$uuid") &&
	ceph-osd -c "$c" -i "$id" --mkfs --osd-uuid "$uuid" 2>>"$d/log/osd.stderr" &&
	ceph-osd -c "$c" -i "$id" 2>>"$d/log/osd.stderr" &&
	_cluster_wait 120 bash -c "ceph -c '$c' osd stat -f json | grep -q '\"num_up_osds\":1'" ||
		{ rgw_stop "$d" keep; return 1; }
	local key=TESTACCESSKEY0000000 secret=testsecretkey0000000000000000000000000000
	radosgw-admin -c "$c" user create --uid=test --display-name=test \
		--access-key="$key" --secret-key="$secret" >"$d/user.json" 2>>"$d/log/admin.stderr" &&
	radosgw -c "$c" -n client.rgw.s3 &&
	# Anonymous ListBuckets: the answer must be radosgw's, not another server's.
	_cluster_wait 60 bash -c "curl -fsS http://127.0.0.1:$rgw/ | grep -q ListAllMyBucketsResult" ||
		{ rgw_stop "$d" keep; return 1; }
	cat >"$d/env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$rgw
S3_ACCESS_KEY=$key
S3_SECRET_KEY=$secret
S3_REGION=us-east-1
ENV
}

rgw_pause() { _cluster_kill KILL "$1/run/client.rgw.s3.pid" "$1/ceph.conf"; }
rgw_resume() {
	local d=$1 port
	port=$(cat "$d/rgw.port")
	radosgw -c "$d/ceph.conf" -n client.rgw.s3 &&
	_cluster_wait 60 bash -c "curl -fsS http://127.0.0.1:$port/ | grep -q ListAllMyBucketsResult"
}

# The data is throwaway: KILL is enough, and takes a second where TERM
# takes ten.  `rgw_stop DIR keep` keeps the logs.
rgw_stop() {
	local d=$1 n
	[[ -d $d/run ]] || return 0
	for n in client.rgw.s3 osd.0 mon.a; do
		_cluster_kill KILL "$d/run/$n.pid" "$d/ceph.conf"
	done
	[[ ${2:-} == keep ]] || rm -rf "$d"
}

# --- PostgreSQL 15 ------------------------------------------------------------

PG_BIN=/usr/lib/postgresql/15/bin

# The server refuses to run as root: as root it runs as the postgres user
# the package made.
_pg_as() {
	if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The database lives in a directory of its own under /tmp (named in
# DIR/pgdir), because the postgres user must be able to reach it and a
# test's scratch directory is private to root.
pg_start() {
	local d=$1 port pgd
	mkdir -p "$d"
	port=$(cluster_free_port 1) || return 1
	pgd=$(mktemp -d /tmp/dil-pg.XXXXXX) || return 1
	echo "$pgd" >"$d/pgdir"
	echo "$port" >"$d/port"
	[[ $(id -u) == 0 ]] && chown postgres: "$pgd"
	_pg_as "$PG_BIN/initdb" -D "$pgd/data" -A trust -U postgres -E UTF8 --no-sync \
		>"$d/initdb.log" 2>&1 || return 1
	pg_resume "$d" || return 1
	_pg_as "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt \
		-c 'CREATE DATABASE dil' >/dev/null || return 1
	cat >"$d/env" <<ENV
PG_PORT=$port
PG_URL=postgresql://postgres@127.0.0.1:$port/dil
ENV
}

pg_resume() {
	local d=$1 port pgd
	port=$(cat "$d/port") pgd=$(cat "$d/pgdir")
	# fsync off: a test database, thrown away at the end.
	_pg_as "$PG_BIN/pg_ctl" -D "$pgd/data" -l "$pgd/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $pgd -c fsync=off -c max_connections=200" \
		start >/dev/null
}
# Immediate shutdown: what a crash of the database looks like to clients.
pg_pause() {
	[[ -s $1/pgdir ]] || return 0
	_pg_as "$PG_BIN/pg_ctl" -D "$(cat "$1/pgdir")/data" -m immediate -w stop >/dev/null 2>&1
	return 0
}
# pg_freeze DIR / pg_thaw DIR: the server stops answering without closing
# anything (SIGSTOP to the postmaster and its backends): a hung database.
_pg_pids() {
	local pm
	pm=$(head -1 "$(cat "$1/pgdir")/data/postmaster.pid" 2>/dev/null) || return
	echo "$pm" $(ps -o pid= --ppid "$pm")
}
pg_freeze() { kill -STOP $(_pg_pids "$1"); }
pg_thaw() { kill -CONT $(_pg_pids "$1"); }
pg_stop() {
	local pgd
	pgd=$(cat "$1/pgdir" 2>/dev/null)
	pg_pause "$1"
	[[ -n $pgd && $pgd == /tmp/dil-pg.* ]] && rm -rf "$pgd"
	rm -rf "$1"
}

# --- nginx --------------------------------------------------------------------

nginx_start() {
	local d=$1 port=$2; shift 2
	mkdir -p "$d"/{tmp,log}
	local servers="" u
	for u in "$@"; do servers+="        server ${u#http://} max_fails=0;"$'\n'; done
	local user=""
	[[ $(id -u) == 0 ]] && user="user root;"
	# One worker, buffered answers: measured on a 2-core loopback machine
	# (nginx, wrk -c16, the replicas and PostgreSQL share the cores), nginx
	# in front of one node proxied the warm 35 KB artifact at 6.6k req/s
	# with 2 workers unbuffered (the former setting), 7.1k with 1 worker
	# unbuffered, 12.4k with 2 workers buffered, 18.6k with 1 worker
	# buffered (the node alone: 18.5k).  On a host of its own, use "auto".
	# Later, with replicas that answer small artifacts from memory: 64 KiB
	# buffers (a 35 KB answer in one read) and long-lived connections took
	# two replicas from ~31k to ~34k req/s (wrk -t2 -c16, median of 3).
	cat >"$d/nginx.conf" <<CONF
$user
worker_processes ${NGINX_WORKERS:-1};
pid $d/nginx.pid;
error_log $d/log/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream replicas {
$servers        keepalive 64;
        keepalive_requests 100000;
    }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 0;
        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            # Uploads stream through.  Answers are read into memory
            # buffers (a 35 KB artifact in one go, see above), and past
            # them stream on at the client's pace, never into temporary
            # files: a 1 GB debuginfo never sits whole on the proxy's disk.
            proxy_request_buffering off;
            proxy_buffering on;
            proxy_buffer_size 64k;
            proxy_buffers 4 64k;
            proxy_busy_buffers_size 64k;
            proxy_max_temp_file_size 0;
            # A replica that is gone: the next one answers (idempotent
            # requests only, as nginx does by default).
            proxy_next_upstream error timeout http_502;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
        }
    }
}
CONF
	nginx -c "$d/nginx.conf" -p "$d" -e "$d/log/error.log" >"$d/log/start.log" 2>&1 || return 1
	_cluster_wait 10 bash -c "(exec 3<>/dev/tcp/127.0.0.1/$port)"
}

nginx_stop() {
	_cluster_kill QUIT "$1/nginx.pid" "$1/nginx.conf"
	rm -rf "$1"
}
