# A throw-away PostgreSQL 15 for the tests (source after lib.sh): pg_up
# initdb's a cluster under $SCRATCH/pg (as the unprivileged `postgres`
# user when run as root), listens on 127.0.0.1:$PG_PORT only (no Unix
# socket outside the scratch dir), and sets PG_URL.  pg_down stops it;
# pg_stop / pg_start pause and resume it (fault tests).  Minimal on
# purpose: the cluster scripts in tests/cluster/ may replace it.
PG_BIN=/usr/lib/postgresql/15/bin
pg_as() {
	if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_available() { [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]]; }
pg_start() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off" start >/dev/null
}
pg_stop() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1
}
pg_up() {
	PG_DIR=$SCRATCH/pg
	mkdir -p "$PG_DIR"
	[[ $(id -u) == 0 ]] && chown postgres "$PG_DIR" && chmod 755 "$SCRATCH"
	pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U dil --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
		|| return 1
	PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	pg_start || return 1
	PG_UP=1
	pg_as "$PG_BIN/../bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U dil -d postgres -qc 'CREATE DATABASE dil' \
		>/dev/null 2>&1 || return 1
	PG_URL="postgresql://dil@127.0.0.1:$PG_PORT/dil"
}
pg_down() {
	[[ -n ${PG_UP:-} ]] && pg_stop
	PG_UP=
}
pg_psql() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U dil -d dil -qAt "$@"; }
# pg_freeze / pg_thaw: the server stops answering without closing anything
# (SIGSTOP to the postmaster and its backends): a slow or hung database.
pg_pids() {
	local pm
	pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return
	echo "$pm" $(ps -o pid= --ppid "$pm")
}
pg_freeze() { kill -STOP $(pg_pids); }
pg_thaw() { kill -CONT $(pg_pids); }
