#!/usr/bin/env bash
# Replicas over one PostgreSQL 15 (initdb'ed here, on 127.0.0.1) and one
# blob directory: an upload through A is served by B (debuginfod-find,
# byte-identical); a profile stored through A is symbolized after its
# debuginfo arrives through B and read through C (Google's pprof); the
# server created and versioned the schema; with the database stopped,
# debuginfod clients see a connection reset, uploads and profile posts a
# 503 with Retry-After, /readyz a 503; once it is back everything resumes
# without a restart and nothing was half-written.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
. "$TOP/tests/cluster/lib.sh"
dil_setup
PG=$SCRATCH/pg
trap 'stop_servers; pg_stop "$PG"; rm -rf "$SCRATCH"' EXIT
if [[ ! -x $PG_BIN/initdb ]]; then
	skip postgres "postgresql-15 is not installed (make deps-test)"; finish
fi
if ! pg_start "$PG"; then
	fail postgres_start "$(tail -3 "$PG/initdb.log" 2>/dev/null | tr '\n' ' ')"; finish
fi
. "$PG/env"
pg_psql() { psql "$PG_URL" -qAt "$@"; }
TOOL=$TOP/$BUILD/tests/debuginfod-lite/test_profile_tool
ID=$(build_id_of "$FIX/crash.stripped")
echo secret >"$SCRATCH/tokens"
AUTH=(-H 'Authorization: Bearer secret')
COMMON=(--db "$PG_URL" --blobs "file:$SCRATCH/blobs" --token-file "$SCRATCH/tokens" --no-watch
	--profile-retry 1)
dil_start A --data "$SCRATCH/a" "${COMMON[@]}"
dil_start B --data "$SCRATCH/b" "${COMMON[@]}"
dil_start C --data "$SCRATCH/c" "${COMMON[@]}"

v=$(pg_psql -c "SELECT string_agg(component || '=' || version, ',' ORDER BY component)
	FROM (SELECT component, max(version) AS version FROM schema_versions GROUP BY component) v")
[[ $v == artifacts=3,profiles=2 ]] && ok pg_schema_versioned || fail pg_schema_versioned "$v"
[[ $(http_code "$A_URL/healthz") == 200 && $(http_code "$A_URL/readyz") == 200 ]] &&
	ok pg_healthz_readyz || fail pg_healthz_readyz

# 1. A profile of the stripped fixture through A, before any debuginfo.
LEAF=$(nm "$FIX/crash" | awk '$3 == "inner_frame" { print $1 }')
echo "$LEAF = 10" | "$TOOL" make "$SCRATCH/p1.pb.gz" --time 1700000000000000000 \
	--duration 10000000000 --mapping "$ID" /opt/app/crash
out=$(curl -s -w ' %{http_code}' "${AUTH[@]}" --data-binary @"$SCRATCH/p1.pb.gz" "$A_URL/profiles")
P1=$(echo "${out% *}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
[[ ${out##* } == 201 && -n $P1 ]] && ok pg_profile_post_a || fail pg_profile_post_a "$out"
state_of() { curl -s "$1/profiles/list?id=$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["profiles"][0]["state"])' 2>/dev/null; }

# 2. Upload through A, fetch through B.
code=$(http_code "${AUTH[@]}" -T "$FIX/crash.stripped" "$A_URL/buildid/$ID/executable")
DEBUGINFOD_URLS=$B_URL debuginfod-find executable "$ID" >"$SCRATCH/p" 2>&1
[[ $code == 201 ]] && cmp -s "$(cat "$SCRATCH/p")" "$FIX/crash.stripped" && ok pg_upload_a_fetch_b ||
	fail pg_upload_a_fetch_b "HTTP $code $(cat "$SCRATCH/p")"

# 3. Its debuginfo arrives through B; the profile, read through C, is symbolized.
code=$(http_code "${AUTH[@]}" -T "$FIX/crash.debug" "$B_URL/buildid/$ID/debuginfo")
for i in $(seq 200); do [[ $(state_of "$C_URL" "$P1") == symbolized ]] && break; sleep 0.1; done
. "$TOP/tests/lib/pprof.sh"
ensure_pprof
curl -s -o "$SCRATCH/sym.pb.gz" "$C_URL/profiles?id=$P1"
if [[ -x $PPROF ]]; then
	top=$(env PPROF_BINARY_PATH=/nonexistent HOME="$SCRATCH" PPROF_TMPDIR="$SCRATCH" "$PPROF" \
		-symbolize=none -top "$SCRATCH/sym.pb.gz" 2>&1)
	[[ $code == 201 ]] && grep -q inner_frame <<<"$top" && ok pg_late_debuginfo_b_profile_a_read_c ||
		fail pg_late_debuginfo_b_profile_a_read_c "HTTP $code state=$(state_of "$C_URL" "$P1") $(tail -3 <<<"$top")"
else
	skip pg_late_debuginfo_b_profile_a_read_c "no pprof"
fi

# 3a. A derived artifact is built once in the cluster: the unwind table
# asked through A, B and C at once is compiled by one replica and served
# identical by all.
pids=()
for n in A B C; do u=${n}_URL; curl -s -o "$SCRATCH/unw.$n" "${!u}/buildid/$ID/unwind" & pids+=($!); done
wait "${pids[@]}"
compiles=0
for n in A B C; do u=${n}_URL; compiles=$((compiles + $(metric "${!u}" unwind_compiles_total))); done
[[ $compiles == 1 ]] && cmp -s "$SCRATCH/unw.A" "$SCRATCH/unw.B" && cmp -s "$SCRATCH/unw.A" "$SCRATCH/unw.C" &&
	[[ -s $SCRATCH/unw.A ]] && ok pg_derived_once_per_cluster ||
	fail pg_derived_once_per_cluster "compiles=$compiles sizes $(wc -c "$SCRATCH"/unw.? | tr '\n' ' ')"

# 3a'. A claim outlives its lifetime while its work runs: with 1 s claims
# and an index build held 4 s, two replicas asked at once build it once
# (the builder renews its claim; unrenewed, the other replica took the
# expired claim over and built it too).
cp "$FIXTURES/symbolizer/c-O2-dw4" "$SCRATCH/renew.dbg"
RID=$(build_id_of "$SCRATCH/renew.dbg" 2>/dev/null)
code=$(http_code "${AUTH[@]}" -T "$SCRATCH/renew.dbg" "$A_URL/buildid/$RID/debuginfo")
DEBUGINFOD_LITE_TEST_CLAIM_S=1 DEBUGINFOD_LITE_TEST_BUILD_DELAY_MS=4000 \
	dil_start K1 --data "$SCRATCH/k1" "${COMMON[@]}"
DEBUGINFOD_LITE_TEST_CLAIM_S=1 DEBUGINFOD_LITE_TEST_BUILD_DELAY_MS=4000 \
	dil_start K2 --data "$SCRATCH/k2" "${COMMON[@]}"
req="{\"requests\":[{\"build_id\":\"$RID\",\"addresses\":[\"0x1000\"]}]}"
for n in K1 K2; do
	u=${n}_URL
	curl -s -X POST --data-binary "$req" -o "$SCRATCH/renew.$n" "${!u}/symbolize" &
	pids+=($!)
done
wait "${pids[@]}"
builds=$(($(metric "$K1_URL" symbolize_index_builds_total) + $(metric "$K2_URL" symbolize_index_builds_total)))
[[ $code == 201 && $builds == 1 ]] && grep -q addresses "$SCRATCH/renew.K1" &&
	cmp -s "$SCRATCH/renew.K1" "$SCRATCH/renew.K2" && ok pg_claim_renewed_while_working ||
	fail pg_claim_renewed_while_working "upload $code, $builds builds, $(head -c 200 "$SCRATCH/renew.K1")"
kill "$K1_PID" "$K2_PID" 2>/dev/null

# 3b. Worker claims: a profile claimed by a replica that died (its claim
# still running) is left alone, then taken up by a live one once the claim
# expired; nothing is symbolized twice.
pg_psql -c "UPDATE profiles SET state=3, claim_owner='dead-replica',
	claim_expires=extract(epoch from now())::bigint + 4 WHERE id=$P1" >/dev/null
before=$(state_of "$A_URL" "$P1")
for i in $(seq 150); do [[ $(state_of "$A_URL" "$P1") == symbolized ]] && break; sleep 0.1; done
after=$(state_of "$A_URL" "$P1")
owner=$(pg_psql -c "SELECT claim_owner || ':' || claim_expires FROM profiles WHERE id=$P1")
[[ $before == pending ]] && before=waiting
[[ $before == waiting && $after == symbolized && $owner == ':0' ]] && ok pg_claim_expires_taken_over ||
	fail pg_claim_expires_taken_over "before=$before after=$after claim=$owner"

# 4. The database goes away.
pg_pause "$PG"
DEBUGINFOD_URLS=$B_URL DEBUGINFOD_RETRY_LIMIT=0 debuginfod-find executable "$ID" >/dev/null 2>&1
curl -s -o /dev/null "$B_URL/buildid/$ID/executable"; rc=$?
[[ $rc == 52 || $rc == 56 ]] && ok pg_down_get_reset || fail pg_down_get_reset "curl exit $rc"
hdr=$(curl -s -D - -o /dev/null "${AUTH[@]}" -T "$FIX/crash" "$A_URL/buildid/$(build_id_of "$FIX/crash")/executable")
grep -q '^HTTP/1.1 503' <<<"$hdr" && grep -qi '^Retry-After:' <<<"$hdr" && ok pg_down_upload_503 ||
	fail pg_down_upload_503 "$(head -1 <<<"$hdr")"
echo "$LEAF = 20" | "$TOOL" make "$SCRATCH/p2.pb.gz" --time 1700000100000000000 \
	--duration 10000000000 --mapping "$ID" /opt/app/crash
hdr=$(curl -s -D - -o /dev/null "${AUTH[@]}" --data-binary @"$SCRATCH/p2.pb.gz" "$C_URL/profiles")
grep -q '^HTTP/1.1 503' <<<"$hdr" && grep -qi '^Retry-After:' <<<"$hdr" && ok pg_down_profile_503 ||
	fail pg_down_profile_503 "$(head -1 <<<"$hdr")"
[[ $(http_code "$A_URL/readyz") == 503 && $(http_code "$A_URL/healthz") == 200 ]] &&
	ok pg_down_readyz_503 || fail pg_down_readyz_503
kill -0 "$A_PID" && kill -0 "$B_PID" && kill -0 "$C_PID" && ok pg_down_no_crash || fail pg_down_no_crash

# 5. It comes back: the same requests succeed, without a restart.
pg_resume "$PG"
for i in $(seq 100); do [[ $(http_code "$A_URL/readyz") == 200 ]] && break; sleep 0.1; done
DEBUGINFOD_URLS=$B_URL debuginfod-find executable "$ID" >"$SCRATCH/p" 2>&1
cmp -s "$(cat "$SCRATCH/p")" "$FIX/crash.stripped" && ok pg_back_get || fail pg_back_get "$(cat "$SCRATCH/p")"
code=$(http_code "${AUTH[@]}" --data-binary @"$SCRATCH/p2.pb.gz" "$C_URL/profiles")
[[ $code == 201 ]] && ok pg_back_profile_201 || fail pg_back_profile_201 "HTTP $code"
# Nothing half-written: every profile row has its blob, no refs without a row.
n=$(pg_psql -c "SELECT count(*) FROM profile_refs WHERE profile NOT IN (SELECT id FROM profiles)")
rows=$(pg_psql -c "SELECT raw FROM profiles")
missing=0
for h in $rows; do [[ -f $SCRATCH/blobs/profiles/${h:0:2}/${h:2} ]] || missing=$((missing + 1)); done
[[ $n == 0 && $missing == 0 && $(wc -w <<<"$rows") == 2 ]] && ok pg_nothing_half_written ||
	fail pg_nothing_half_written "orphan refs $n, rows without blob $missing, rows $(wc -w <<<"$rows")"
# 5b. Every connection of the replicas killed by the database (as a
# failover or an idle timeout does): the next requests reconnect and succeed.
pg_psql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE application_name='debuginfod-lite'" >/dev/null
echo "$LEAF = 40" | "$TOOL" make "$SCRATCH/p4.pb.gz" --time 1700000300000000000 \
	--duration 10000000000 --mapping "$ID" /opt/app/crash
code=$(http_code "${AUTH[@]}" --data-binary @"$SCRATCH/p4.pb.gz" "$B_URL/profiles")
get=$(http_code "$C_URL/buildid/$ID/executable")
[[ $code == 201 && $get == 200 ]] && ok pg_connections_killed_reconnect ||
	fail pg_connections_killed_reconnect "POST $code GET $get"

# 5b'. The connection lost in the middle of a transaction: psql holds a lock
# on profile_refs, so B's ingest has inserted its profiles row and waits on
# its first reference; then the database kills B's connections.  The post
# is refused (503, the agent resends), no row of it stays behind, and the
# next post goes through.
pg_psql -c "BEGIN; LOCK TABLE profile_refs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;" \
	>/dev/null 2>&1 &
locker=$!
sleep 0.5
echo "$LEAF = 41" | "$TOOL" make "$SCRATCH/p5.pb.gz" --time 1700000400000000000 \
	--duration 10000000000 --mapping "$ID" /opt/app/crash
http_code "${AUTH[@]}" --data-binary @"$SCRATCH/p5.pb.gz" "$B_URL/profiles" >"$SCRATCH/p5.code" &
poster=$!
waiting=0
for i in $(seq 40); do
	waiting=$(pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name='debuginfod-lite'
		AND wait_event_type='Lock'")
	[[ $waiting -gt 0 ]] && break
	sleep 0.1
done
pg_psql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE application_name='debuginfod-lite'" >/dev/null
wait "$poster"; code=$(cat "$SCRATCH/p5.code")
wait "$locker"
rows=$(pg_psql -c "SELECT count(*) FROM profiles WHERE t_start=1700000400000000000")
code2=$(http_code "${AUTH[@]}" --data-binary @"$SCRATCH/p5.pb.gz" "$B_URL/profiles")
rows2=$(pg_psql -c "SELECT count(*) FROM profiles WHERE t_start=1700000400000000000")
[[ $waiting -gt 0 && $code == 503 && $rows == 0 && $code2 == 201 && $rows2 == 1 ]] &&
	ok pg_connection_lost_mid_transaction ||
	fail pg_connection_lost_mid_transaction "blocked in a transaction: $waiting, POST $code, rows $rows; again: POST $code2, rows $rows2"

# 5c. A database that stops answering (hung, not down): with --db-timeout 2
# a replica answers a reset and a 503 instead of hanging, and resumes after.
dil_start D --data "$SCRATCH/d" "${COMMON[@]}" --db-timeout 2
pg_freeze "$PG"
curl -s -o /dev/null --max-time 60 "$D_URL/buildid/$ID/executable"; rc=$?
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "${AUTH[@]}" \
	--data-binary @"$SCRATCH/p4.pb.gz" "$D_URL/profiles")
pg_thaw "$PG"
for i in $(seq 100); do [[ $(http_code "$D_URL/readyz") == 200 ]] && break; sleep 0.1; done
get=$(http_code "$D_URL/buildid/$ID/executable")
[[ ($rc == 52 || $rc == 56) && $code == 503 && $get == 200 ]] && ok pg_hung_db_bounded ||
	fail pg_hung_db_bounded "GET curl exit $rc (28 = hung), POST $code, after $get"

# 5d. One upstream fetch for the whole cluster: three replicas federating to
# one slow upstream are asked for the same executable at once (ten requests
# each); the upstream sees one request and every answer is the file.
UP_ID=$(build_id_of /bin/true)
timeout 120 python3 "$TOP/tests/debuginfod-lite/fake_upstream.py" slow "$SCRATCH/slow.port" \
	"$SCRATCH/slow.count" /bin/true &
SLOW_PID=$!
for i in $(seq 50); do [[ -s $SCRATCH/slow.port ]] && break; sleep 0.1; done
UP=(--upstream "http://127.0.0.1:$(cat "$SCRATCH/slow.port")")
dil_start U1 --data "$SCRATCH/u1" "${COMMON[@]}" "${UP[@]}"
dil_start U2 --data "$SCRATCH/u2" "${COMMON[@]}" "${UP[@]}"
dil_start U3 --data "$SCRATCH/u3" "${COMMON[@]}" "${UP[@]}"
pids=()
for i in $(seq 10); do
	for u in "$U1_URL" "$U2_URL" "$U3_URL"; do
		curl -s -o "$SCRATCH/fl.$i.${u##*:}" "$u/buildid/$UP_ID/executable" & pids+=($!)
	done
done
wait "${pids[@]}"
bad=0
for f in "$SCRATCH"/fl.*; do cmp -s "$f" /bin/true || bad=$((bad + 1)); done
fetches=$(wc -l <"$SCRATCH/slow.count" 2>/dev/null)
kill "$SLOW_PID" 2>/dev/null; wait "$SLOW_PID" 2>/dev/null
[[ $bad == 0 && $fetches == 1 ]] && ok pg_one_upstream_fetch_per_cluster ||
	fail pg_one_upstream_fetch_per_cluster "$bad of 30 answers differ, $fetches upstream fetches"

# 6. A single-node data directory (as make run creates it) migrated into
# the cluster: twice (the second run copies nothing), then served by a
# replica; a scanned file is imported into the blob store.
mkdir -p "$SCRATCH/scandir"
cp /bin/ls "$SCRATCH/scandir/ls"
LS_ID=$(build_id_of /bin/ls)
LIBC_ID_SHORT=$(build_id_of /bin/true)
dil_start S --data "$SCRATCH/single" --token-file "$SCRATCH/tokens" --scan "$SCRATCH/scandir" --no-watch
for i in $(seq 100); do [[ $(http_code "$S_URL/buildid/$LS_ID/executable") == 200 ]] && break; sleep 0.1; done
http_code "${AUTH[@]}" -T /bin/true "$S_URL/buildid/$LIBC_ID_SHORT/executable" >/dev/null
echo "$LEAF = 30" | "$TOOL" make "$SCRATCH/p3.pb.gz" --time 1700000200000000000 \
	--duration 10000000000 --mapping "$ID" /opt/app/crash
http_code "${AUTH[@]}" --data-binary @"$SCRATCH/p3.pb.gz" "$S_URL/profiles" >/dev/null
kill "$S_PID"; wait "$S_PID" 2>/dev/null
m1=$("$BIN/debuginfod-lite" migrate --data "$SCRATCH/single" --db "$PG_URL" --blobs "file:$SCRATCH/blobs" 2>&1)
m2=$("$BIN/debuginfod-lite" migrate --data "$SCRATCH/single" --db "$PG_URL" --blobs "file:$SCRATCH/blobs" 2>&1)
[[ $m1 == *"scanned files imported 1,"* && $m2 == *"blobs copied 0,"* && $m2 == *"rows copied 0,"* && $m2 == *"imported 0,"* ]] &&
	ok pg_migrate_idempotent || fail pg_migrate_idempotent "first: $m1 second: $m2"
DEBUGINFOD_URLS=$B_URL debuginfod-find executable "$LIBC_ID_SHORT" >"$SCRATCH/p" 2>&1
ok1=$(cmp -s "$(cat "$SCRATCH/p")" /bin/true && echo y)
rm -rf "$SCRATCH/scandir"
curl -s -o "$SCRATCH/imported" "$C_URL/buildid/$LS_ID/executable"
n=$(curl -s "$A_URL/profiles/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["profiles"]))')
[[ $ok1 == y && $n == 5 ]] && cmp -s "$SCRATCH/imported" /bin/ls && ok pg_migrated_served ||
	fail pg_migrated_served "uploaded file served: ${ok1:-no}, profiles $n, scanned file: $(cmp "$SCRATCH/imported" /bin/ls 2>&1)"

m=$(curl -s "$A_URL/metrics" | grep -c '^backend_unavailable_total{backend="db"')
[[ $m == 2 ]] && ok pg_backend_metrics || fail pg_backend_metrics "$m"
finish
