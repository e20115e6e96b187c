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
. "$TOP/tests/debuginfod-lite/pg.sh"
dil_setup
trap 'stop_servers; pg_down; rm -rf "$SCRATCH"' EXIT
if ! pg_available; then
	skip postgres "postgresql-15 is not installed (make deps-test)"; finish
fi
if ! pg_up; then
	fail postgres_start "$(tail -3 "$SCRATCH/pg/log" "$SCRATCH/pg/initdb.log" 2>/dev/null | tr '\n' ' ')"; finish
fi
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
[[ $v == artifacts=1,profiles=1 ]] && ok pg_schema_versioned || fail pg_schema_versioned "$v"
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

# 4. The database goes away.
pg_stop
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
pg_start
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
m=$(curl -s "$A_URL/metrics" | grep -c '^backend_unavailable_total{backend="db"')
[[ $m == 2 ]] && ok pg_backend_metrics || fail pg_backend_metrics "$m"
finish
