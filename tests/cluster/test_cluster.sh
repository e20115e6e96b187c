#!/usr/bin/env bash
# The cluster on loopback: PostgreSQL 15, Ceph RGW, three replicas of
# debuginfod-lite (A, B, C) over them, nginx in front.  Real clients go
# through nginx (debuginfod-upload, debuginfod-find, gdb, profiler-agent,
# Google pprof); scenarios address replicas one by one where the point is
# that another replica answers.  Faults: a replica killed with SIGKILL in the
# middle of an upload, RGW and PostgreSQL each stopped for 20 s during traffic.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/cluster/lib.sh"
scratch
missing=$(cluster_missing)
if [[ -n $missing ]]; then skip cluster "not installed: $missing (make deps-test)"; exit 0; fi
S=$SCRATCH
REPLICAS=(A B C)
declare -A PID SRV PORT
# PID: the `timeout` guard around a replica; SRV: the server process itself.
stop_replica() { # NAME SIGNAL
	[[ -n ${PID[$1]:-} ]] || return 0
	kill "-${2:-TERM}" "${SRV[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
	PID[$1]= SRV[$1]=
}
cleanup() {
	[[ -n ${LOOP_PID:-} ]] && kill "$LOOP_PID" 2>/dev/null
	local r
	for r in "${REPLICAS[@]}"; do [[ -n ${SRV[$r]:-} ]] && kill -CONT "${SRV[$r]}" 2>/dev/null; done
	for r in "${REPLICAS[@]}"; do stop_replica "$r"; done
	nginx_stop "$S/nginx"; pg_stop "$S/pg"; rgw_stop "$S/rgw"
	rm -rf "$S"
}
trap cleanup EXIT
unset DEBUGINFOD_URLS
export DEBUGINFOD_CACHE_PATH=$S/client-cache
FIX=$FIXTURES/debuginfod-lite
build_id_of() { readelf -n "$1" 2>/dev/null | awk '/Build ID/ { print $3; exit }'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

rgw_start "$S/rgw" || { fail cluster_rgw_start "$(tail -3 "$S"/rgw/log/*.log 2>/dev/null | tr '\n' ' ')"; finish; }
pg_start "$S/pg" || { fail cluster_pg_start "$(tail -3 "$S/pg/initdb.log" 2>/dev/null)"; finish; }
. "$S/rgw/env"; . "$S/pg/env"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
echo cluster-token >"$S/tokens"
AUTH=(-H 'Authorization: Bearer cluster-token')

# start_replica NAME: the same flags for every replica; the same port again
# after a restart, so nginx finds it.
start_replica() {
	local n=$1
	rm -f "$S/$n.port"
	timeout -s TERM 600 "$BIN/debuginfod-lite" --listen "127.0.0.1:${PORT[$n]:-0}" \
		--port-file "$S/$n.port" --data "$S/$n" --db "$PG_URL" \
		--blobs s3://dil-cluster/test --s3-endpoint "$S3_ENDPOINT" --cache-quota 200000000 \
		--token-file "$S/tokens" --max-upload 20000000 --profile-claim 8 2>>"$S/$n.log" &
	PID[$n]=$!
	local i
	for i in $(seq 100); do [[ -s $S/$n.port ]] && break; kill -0 "${PID[$n]}" 2>/dev/null || break; sleep 0.1; done
	[[ -s $S/$n.port ]] || { echo "replica $n did not start: $(tail -3 "$S/$n.log")"; return 1; }
	PORT[$n]=$(cat "$S/$n.port")
	SRV[$n]=$(pgrep -P "${PID[$n]}")
}
url() { echo "http://127.0.0.1:${PORT[$1]}"; }
for r in "${REPLICAS[@]}"; do
	start_replica "$r" || { fail "cluster_replica_${r}_start" "$(tail -3 "$S/$r.log" | tr '\n' ' ')"; finish; }
done
NGINX_PORT=$(cluster_free_port)
nginx_start "$S/nginx" "$NGINX_PORT" "$(url A)" "$(url B)" "$(url C)" ||
	{ fail cluster_nginx_start "$(cat "$S/nginx/log/"* 2>/dev/null | tail -3)"; finish; }
LB=http://127.0.0.1:$NGINX_PORT
ok cluster_started
ready=1
for r in "${REPLICAS[@]}"; do [[ $(code "$(url "$r")/readyz") == 200 ]] || ready=0; done
((ready)) && ok cluster_readyz || fail cluster_readyz "a replica is not ready"

ID=$(build_id_of "$FIX/crash.stripped")

# --- 1. A profile through A, its debuginfo later through B, read through C ---
TOOL=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
inner=$(nm "$FIX/crash" | awk '$3 == "inner_frame" { print $1 }')
middle=$(nm "$FIX/crash" | awk '$3 == "middle_frame" { print $1 }')
printf '%x %x = 90\n' $((16#$inner + 4)) $((16#$middle + 8)) |
	"$TOOL" make "$S/p1.pb.gz" --time 1700000000000000000 --duration 10000000000 \
		--label host=h1 --mapping "$ID" /opt/app/crash >/dev/null
out=$(curl -s -w ' %{http_code}' "${AUTH[@]}" --data-binary @"$S/p1.pb.gz" "$(url A)/profiles")
P1=$(echo "${out% *}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
[[ ${out##* } == 201 && -n $P1 ]] && ok cluster_profile_post_A || fail cluster_profile_post_A "$out"
c=$(code "${AUTH[@]}" -T "$FIX/crash.debug" "$(url B)/buildid/$ID/debuginfo")
[[ $c == 201 ]] && ok cluster_debuginfo_upload_B || fail cluster_debuginfo_upload_B "HTTP $c"
state=
for _ in $(seq 150); do
	state=$(curl -s "$(url C)/profiles/list?id=$P1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["profiles"][0]["state"])' 2>/dev/null)
	[[ $state == symbolized ]] && break
	sleep 0.2
done
. "$TOP/tests/lib/pprof.sh"
if [[ $state != symbolized ]]; then
	fail cluster_profile_symbolized_read_C "state '$state' after 30 s"
elif ! ensure_pprof; then
	skip cluster_profile_pprof "could not build pprof offline"
else
	curl -s -o "$S/sym.pb.gz" "$LB/profiles"
	env PPROF_BINARY_PATH=/nonexistent PPROF_TMPDIR="$S" HOME="$S" "$PPROF" -symbolize=none \
		-traces "$S/sym.pb.gz" >"$S/traces" 2>&1
	grep -q inner_frame "$S/traces" && grep -q middle_frame "$S/traces" &&
		ok cluster_profile_symbolized_read_C_pprof ||
		fail cluster_profile_symbolized_read_C_pprof "$(head -5 "$S/traces" | tr '\n' ' ')"
fi

# --- 2. Upload through A, fetch through B; real clients through nginx ---
c=$(code "${AUTH[@]}" -T "$FIX/crash.stripped" "$(url A)/buildid/$ID/executable")
curl -s -o "$S/exe.B" "$(url B)/buildid/$ID/executable"
[[ $c == 201 ]] && cmp -s "$S/exe.B" "$FIX/crash.stripped" && ok cluster_upload_A_fetch_B ||
	fail cluster_upload_A_fetch_B "upload HTTP $c"
out=$("$BIN/debuginfod-upload" --server "$LB" --token cluster-token "$FIXTURES/agent-hooks/spin" 2>&1)
[[ $? == 0 ]] && ok cluster_debuginfod_upload_via_nginx || fail cluster_debuginfod_upload_via_nginx "$out"
SPIN_ID=$(build_id_of "$FIXTURES/agent-hooks/spin")
all_same=1
for i in 1 2 3 4; do # round robin: every replica answers once at least
	rm -rf "$DEBUGINFOD_CACHE_PATH"
	p=$(DEBUGINFOD_URLS=$LB debuginfod-find debuginfo "$ID" 2>&1) && cmp -s "$p" "$FIX/crash.debug" || all_same=0
	p=$(DEBUGINFOD_URLS=$LB debuginfod-find executable "$SPIN_ID" 2>&1) &&
		cmp -s "$p" "$FIXTURES/agent-hooks/spin" || all_same=0
done
((all_same)) && ok cluster_debuginfod_find_identical || fail cluster_debuginfod_find_identical "$p"
rm -rf "$DEBUGINFOD_CACHE_PATH"
cp "$FIX/crash.stripped" "$S/crash"
bt=$(cd "$S" && DEBUGINFOD_URLS=$LB timeout 120 gdb -q -batch -nx \
	-iex 'set debuginfod enabled on' -ex run -ex bt --args ./crash 1 2>&1)
grep -q 'inner_frame.*crash\.c:[0-9]' <<<"$bt" && grep -q 'main.*crash\.c' <<<"$bt" &&
	ok cluster_gdb_via_nginx || fail cluster_gdb_via_nginx "$(grep '^#' <<<"$bt" | head -3 | tr '\n' ' ')"

# --- 3. profiler-agent posting through nginx ---
before=$(curl -s "$LB/profiles/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["profiles"]))')
if [[ $(id -u) != 0 || ! -r /sys/kernel/btf/vmlinux ]]; then
	skip cluster_agent_posts "needs root and kernel BTF"
else
	"$FIXTURES/agent-hooks/spin" 30 >/dev/null 2>&1 &
	spin=$!
	timeout 60 "$BIN/profiler-agent" --server "$LB" --pid "$spin" --duration 4 --interval 2 \
		--frequency 49 --token-file "$S/tokens" --cache-dir "$S/agent-cache" >"$S/agent.log" 2>&1
	arc=$?
	kill "$spin" 2>/dev/null; wait "$spin" 2>/dev/null
	after=$(curl -s "$LB/profiles/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["profiles"]))')
	((arc == 0 && after > before)) && ok cluster_agent_posts ||
		fail cluster_agent_posts "agent rc $arc, profiles $before -> $after: $(tail -2 "$S/agent.log" | tr '\n' ' ')"
fi

# Distinct small executables for the fault scenarios (each its own build-ID).
mkdir -p "$S/elf"
for i in $(seq 1 40); do
	echo "int main(void) { return $i; }" | cc -x c - -o "$S/elf/e$i" -Wl,--build-id=sha1 2>/dev/null
done
up() { # FILE REPLICA_URL -> HTTP code, and the headers in $S/h
	curl -s -D "$S/h" -o /dev/null -w '%{http_code}' "${AUTH[@]}" -T "$1" \
		"$2/buildid/$(build_id_of "$1")/executable"
}

# --- 4. kill -9 in the middle of an upload ---
LIBC_DBG=/usr/lib/debug/.build-id/$(build_id_of /lib/x86_64-linux-gnu/libc.so.6 | sed 's|^..|&/|').debug
if [[ ! -f $LIBC_DBG ]]; then
	skip cluster_kill9_mid_upload "libc6-dbg not installed"
else
	LIBC_ID=$(build_id_of "$LIBC_DBG")
	curl -s -o /dev/null --limit-rate 400K "${AUTH[@]}" -T "$LIBC_DBG" "$(url A)/buildid/$LIBC_ID/debuginfo" &
	upl=$!
	sleep 1.5
	stop_replica A KILL
	wait "$upl"
	c=$(code "$(url B)/buildid/$LIBC_ID/debuginfo")
	[[ $c == 404 ]] && ok cluster_kill9_mid_upload_nothing_half_way || fail cluster_kill9_mid_upload_nothing_half_way "B answers $c"
	start_replica A || fail cluster_kill9_restart "$(tail -2 "$S/A.log")"
	c=$(code "${AUTH[@]}" -T "$LIBC_DBG" "$(url B)/buildid/$LIBC_ID/debuginfo")
	curl -s -o "$S/libc.A" "$(url A)/buildid/$LIBC_ID/debuginfo"
	[[ $c == 201 ]] && cmp -s "$S/libc.A" "$LIBC_DBG" && ok cluster_kill9_upload_again_served_everywhere ||
		fail cluster_kill9_upload_again_served_everywhere "HTTP $c"
	# Content-addressed: the two uploads left one object.
	n=$("$TOP/$BUILD/tests/debuginfod-lite/s3_tool" --endpoint "$S3_ENDPOINT" --bucket dil-cluster list test/blobs/ |
		awk -v s="$(stat -c %s "$LIBC_DBG")" '$2 == s' | wc -l)
	[[ $n == 1 ]] && ok cluster_kill9_no_duplicate_object || fail cluster_kill9_no_duplicate_object "$n objects"
fi

# --- 5. kill -9 in the middle of a batch of profiles ---
# A restarts with a worker that pauses 300 ms before each profile (a
# test-only knob) and takes thirty profiles (debuginfo is there) while B
# and C are frozen, so the batch is A's alone; A is frozen too while it
# holds claims on it, and killed.  Once its claims expire (8 s,
# --profile-claim) B and C finish every profile, and none twice: what B and
# C symbolize is exactly what A had not finished.
stop_replica A
DEBUGINFOD_LITE_TEST_PROFILE_DELAY_MS=300 start_replica A ||
	fail cluster_kill9_batch_slow_start "$(tail -2 "$S/A.log")"
symbolized_by() { curl -s "$(url "$1")/metrics" | awk '$1 == "profiles_symbolized_total" { print $2 }'; }
live_claims_of_a() {
	psql "$PG_URL" -qAt -c "SELECT count(*) FROM profiles WHERE state IN (0,3)
		AND claim_owner LIKE '%:${SRV[A]}:%' AND claim_expires > extract(epoch from now())"
}
# Earlier scenarios' work (the libc upload re-queues the agent's profiles)
# is finished first.
for _ in $(seq 150); do
	[[ $(psql "$PG_URL" -qAt -c "SELECT count(*) FROM profiles WHERE state IN (0,3)") == 0 ]] && break
	sleep 0.2
done
bc_before=$(( $(symbolized_by B) + $(symbolized_by C) ))
kill -STOP "${SRV[B]}" "${SRV[C]}"
N=30 posted=0
for i in $(seq "$N"); do
	printf '%x %x = %d\n' $((16#$inner + 4)) $((16#$middle + 8)) "$i" |
		"$TOOL" make "$S/b$i.pb.gz" --time "$((1700001000 + i))000000000" --duration 1000000000 \
			--label batch=kill9 --label n="$i" --mapping "$ID" /opt/app/crash >/dev/null
	[[ $(code "${AUTH[@]}" --data-binary @"$S/b$i.pb.gz" "$(url A)/profiles") == 201 ]] &&
		posted=$((posted + 1))
done
for _ in $(seq 50); do (($(live_claims_of_a) > 0)) && break; sleep 0.1; done
sleep 0.3 # let A finish a few
kill -STOP "${SRV[A]}"
held=$(live_claims_of_a)
done_by_a=$(psql "$PG_URL" -qAt -c "SELECT count(*) FROM profiles p WHERE p.sym <> '' AND p.id IN
	(SELECT profile FROM profile_labels WHERE key='batch' AND value='kill9')")
kill -CONT "${SRV[B]}" "${SRV[C]}"
stop_replica A KILL
listed=0 done_=0 t0=$SECONDS
for _ in $(seq 600); do
	read -r listed done_ < <(curl -s "${AUTH[@]}" "$(url B)/profiles/list?label=batch=kill9" | python3 -c '
import json, sys
p = json.load(sys.stdin)["profiles"]
print(len(p), sum(1 for x in p if x["state"] == "symbolized"))' 2>/dev/null)
	[[ $done_ == "$posted" ]] && break
	sleep 0.2
done
bc=$(( $(symbolized_by B) + $(symbolized_by C) - bc_before ))
echo "# A held $held claims, had finished $done_by_a; B and C did $bc, all done $((SECONDS - t0)) s after the kill"
[[ $held -gt 0 && $done_by_a -lt $N && $posted == "$N" && $listed == "$N" && $done_ == "$N" && $bc == $((N - done_by_a)) ]] &&
	ok cluster_kill9_mid_batch_all_symbolized_once ||
	fail cluster_kill9_mid_batch_all_symbolized_once "A held $held claims and finished $done_by_a; posted $posted, listed $listed, symbolized $done_, B and C symbolized $bc"
start_replica A || fail cluster_kill9_batch_restart "$(tail -2 "$S/A.log")"

# --- 6/7. RGW, then PostgreSQL, down for 20 s during traffic ---
# traffic FILE_FROM FILE_TO: upload each file through nginx, one every 0.4 s,
# and log "FILE CODE RETRY_AFTER" lines; then fetch a served artifact.
traffic() {
	local i c
	for i in $(seq "$1" "$2"); do
		c=$(up "$S/elf/e$i" "$LB")
		echo "$i $c $(grep -i '^retry-after:' "$S/h" | tr -d '\r' | awk '{print $2}')" >>"$S/traffic.log"
		code "$LB/buildid/$ID/executable" >>"$S/reads.log"
		echo >>"$S/reads.log"
		sleep 0.4
	done
}
outage() { # NAME PAUSE RESUME FROM TO
	local name=$1 pause=$2 resume=$3
	: >"$S/traffic.log"; : >"$S/reads.log"
	traffic "$4" "$5" & LOOP_PID=$!
	sleep 2
	"$pause" "$S/${name}"
	sleep 18
	local ready_down ready_up
	ready_down=$(code "$(url B)/readyz")
	sleep 2
	"$resume" "$S/${name}" || fail "cluster_${name}_resume" "could not restart"
	wait "$LOOP_PID"; LOOP_PID=
	ready_up=$(code "$(url B)/readyz")
	[[ $ready_down != 200 && $ready_up == 200 ]] && ok "cluster_${name}_readyz_follows" ||
		fail "cluster_${name}_readyz_follows" "down: $ready_down, back: $ready_up"
	local got201 got503 other ra lost=0 f
	got201=$(awk '$2 == 201' "$S/traffic.log" | wc -l)
	got503=$(awk '$2 == 503' "$S/traffic.log" | wc -l)
	other=$(awk '$2 != 201 && $2 != 503' "$S/traffic.log" | wc -l)
	ra=$(awk '$2 == 503 && $3 == ""' "$S/traffic.log" | wc -l)
	((got503 > 0 && ra == 0 && other == 0)) && ok "cluster_${name}_down_uploads_503_retry_after" ||
		fail "cluster_${name}_down_uploads_503_retry_after" "201: $got201, 503: $got503 ($ra without Retry-After), other: $other ($(awk '{print $2}' "$S/traffic.log" | sort | uniq -c | tr '\n' ' '))"
	# Reads meanwhile: served (from a replica's cache) or failed as a
	# failing upstream fails (a reset), never a 404 that a client would
	# cache as a miss.
	local bad
	bad=$(grep -c '^404$' "$S/reads.log")
	((bad == 0)) && ok "cluster_${name}_down_reads_never_404" ||
		fail "cluster_${name}_down_reads_never_404" "$(sort "$S/reads.log" | uniq -c | tr '\n' ' ')"
	# Every 201 survived, on every replica; every 503 goes in now, no restart.
	for i in $(awk '$2 == 201 { print $1 }' "$S/traffic.log"); do
		for r in "${REPLICAS[@]}"; do
			curl -s -o "$S/back" "$(url "$r")/buildid/$(build_id_of "$S/elf/e$i")/executable"
			cmp -s "$S/back" "$S/elf/e$i" || { lost=$((lost + 1)); f="e$i via $r"; }
		done
	done
	((lost == 0 && got201 > 0)) && ok "cluster_${name}_down_every_201_survives" ||
		fail "cluster_${name}_down_every_201_survives" "$lost lost ($f), $got201 accepted"
	local again=0 retried=0
	for i in $(awk '$2 == 503 { print $1 }' "$S/traffic.log"); do
		retried=$((retried + 1))
		[[ $(up "$S/elf/e$i" "$LB") == 201 ]] && again=$((again + 1))
	done
	((again == retried)) && ok "cluster_${name}_back_resumes_without_restart" ||
		fail "cluster_${name}_back_resumes_without_restart" "$again of $retried accepted afterwards"
}
outage rgw rgw_pause rgw_resume 1 19
outage pg pg_pause pg_resume 21 39
# --- 8. migrate a single node's data directory into the cluster ---
if timeout 10 "$BIN/debuginfod-lite" migrate --data "$S/probe" 2>&1 | grep -q "unexpected argument 'migrate'"; then
	skip cluster_migrate "debuginfod-lite has no migrate command in this build"
else
	"$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$S/single.port" --data "$S/single" \
		--token-file "$S/tokens" 2>"$S/single.log" &
	single=$!
	for _ in $(seq 100); do [[ -s $S/single.port ]] && break; sleep 0.1; done
	su=http://127.0.0.1:$(cat "$S/single.port")
	e40=$(build_id_of "$S/elf/e40")
	code "${AUTH[@]}" -T "$S/elf/e40" "$su/buildid/$e40/executable" >/dev/null
	kill "$single"; wait "$single" 2>/dev/null
	psql "$PG_URL" -qAt -c 'CREATE DATABASE dil_migrated' >/dev/null 2>&1
	MURL=${PG_URL%/dil}/dil_migrated
	MIG=("$BIN/debuginfod-lite" migrate --data "$S/single" --db "$MURL"
		--blobs s3://dil-migrated --s3-endpoint "$S3_ENDPOINT")
	if "${MIG[@]}" >"$S/migrate.log" 2>&1 && "${MIG[@]}" >>"$S/migrate.log" 2>&1; then
		ok cluster_migrate_twice
	else fail cluster_migrate_twice "$(tail -3 "$S/migrate.log" | tr '\n' ' ')"; fi
	"$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$S/m.port" --data "$S/m" --db "$MURL" \
		--blobs s3://dil-migrated --s3-endpoint "$S3_ENDPOINT" 2>"$S/m.log" &
	mig=$!
	for _ in $(seq 100); do [[ -s $S/m.port ]] && break; sleep 0.1; done
	curl -s -o "$S/mig.out" "http://127.0.0.1:$(cat "$S/m.port" 2>/dev/null)/buildid/$e40/executable"
	cmp -s "$S/mig.out" "$S/elf/e40" && ok cluster_migrate_served ||
		fail cluster_migrate_served "$(tail -2 "$S/m.log" | tr '\n' ' ')"
	kill "$mig"; wait "$mig" 2>/dev/null
fi

# The S3 client's counters reach /metrics.
gets=$(curl -s "$(url B)/metrics" | awk '$1 == "s3_operations_total{op=\"get\"}" { print $2 }')
[[ -n $gets ]] && ((gets > 0)) && ok cluster_s3_metrics || fail cluster_s3_metrics "get ops '$gets'"
for r in "${REPLICAS[@]}"; do
	kill -0 "${SRV[$r]}" 2>/dev/null || fail "cluster_replica_${r}_alive" "exited: $(tail -2 "$S/$r.log" | tr '\n' ' ')"
done
finish
