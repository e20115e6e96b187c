#!/usr/bin/env bash
# Uploads: tokens, validation, best-candidate rule, debuginfod-upload, gdb
# symbolizing a stripped fixture from uploaded debuginfo, crash safety.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
echo "s3cret-token" >"$SCRATCH/tokens"
dil_start A --data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --max-upload 8000000
put() { curl -s -o "$SCRATCH/body" -w '%{http_code}' -T "$1" "${@:3}" "$A_URL/buildid/$2"; }
AUTH=(-H "Authorization: Bearer s3cret-token")

[[ $(put "$FIX/crash.debug" "$FIX_ID/debuginfo") == 401 ]] && ok upload_no_token_401 || fail upload_no_token_401
[[ $(put "$FIX/crash.debug" "$FIX_ID/debuginfo" -H "Authorization: Bearer wrong") == 401 ]] \
	&& ok upload_bad_token_401 || fail upload_bad_token_401
other=$(build_id_of /bin/ls)
c=$(put "$FIX/crash.debug" "$other/debuginfo" "${AUTH[@]}")
[[ $c == 400 ]] && grep -q mismatch "$SCRATCH/body" && ok upload_buildid_mismatch_400 \
	|| fail upload_buildid_mismatch_400 "$c $(cat "$SCRATCH/body")"
c=$(put "$TOP/tests/fixtures/debuginfod-lite/crash.c" "$FIX_ID/debuginfo" "${AUTH[@]}")
[[ $c == 400 ]] && grep -q 'not an ELF' "$SCRATCH/body" && ok upload_not_elf_400 \
	|| fail upload_not_elf_400 "$c $(cat "$SCRATCH/body")"
head -c 9000000 /dev/zero >"$SCRATCH/big"
c=$(put "$SCRATCH/big" "$FIX_ID/debuginfo" "${AUTH[@]}")
[[ $c == 413 ]] && ok upload_oversized_413 || fail upload_oversized_413 "$c"
c=$(put "$FIX/crash.debug" "$FIX_ID/executable" "${AUTH[@]}")
[[ $c == 422 ]] && ok upload_debug_as_executable_422 || fail upload_debug_as_executable_422 "$c"
[[ $(http_code "$A_URL/buildid/$FIX_ID/debuginfo") == 404 ]] && ok rejected_uploads_not_served \
	|| fail rejected_uploads_not_served

# debuginfod-upload: a stripped executable and its separate debuginfo; a
# second run finds both on the server and uploads nothing.
out=$("$BIN/debuginfod-upload" --server "$A_URL" --token s3cret-token "$FIX/crash.stripped" "$FIX/crash.debug" 2>&1)
rc=$?
[[ $rc == 0 ]] && grep -q 'executable .* uploaded' <<<"$out" && grep -q 'debuginfo .* uploaded' <<<"$out" \
	&& ok upload_client || fail upload_client "$rc $out"
out=$("$BIN/debuginfod-upload" --server "$A_URL" --token s3cret-token "$FIX/crash.stripped" "$FIX/crash.debug" 2>&1)
[[ $? == 0 && $(grep -c already <<<"$out") == 2 ]] && ok upload_client_skips_existing \
	|| fail upload_client_skips_existing "$out"
"$BIN/debuginfod-upload" --server "$A_URL" --token wrong --retries 0 "$(readlink -f /bin/true)" >/dev/null 2>&1 \
	&& fail upload_client_fails_nonzero || ok upload_client_fails_nonzero
"$BIN/debuginfod-upload" --server "$A_URL" --token s3cret-token --retries 0 "$TOP/tests/fixtures/debuginfod-lite/crash.c" \
	>/dev/null 2>&1 && fail upload_client_rejects_non_elf || ok upload_client_rejects_non_elf
DEBUGINFOD_URLS=$A_URL debuginfod-find executable "$FIX_ID" >"$SCRATCH/p" 2>&1
check find_uploaded_executable cmp "$(cat "$SCRATCH/p")" "$FIX/crash.stripped"

# gdb: a backtrace of the stripped program names functions and lines.
cp "$FIX/crash.stripped" "$SCRATCH/crash"
bt=$(cd "$SCRATCH" && DEBUGINFOD_URLS=$A_URL timeout 120 gdb -q -batch -nx \
	-iex 'set debuginfod enabled on' -ex run -ex bt --args ./crash 1 2>&1)
grep -q 'inner_frame.*crash\.c:[0-9]' <<<"$bt" && grep -q 'middle_frame' <<<"$bt" && grep -q 'main.*crash\.c' <<<"$bt" \
	&& ok gdb_backtrace_from_upload || fail gdb_backtrace_from_upload "$(grep '^#' <<<"$bt" | head -5)"

# Best candidate: real debuginfo is there; then a symtab-only "debuginfo": the first stays.
objcopy --strip-debug "$FIX/crash" "$SCRATCH/crash.symtab-only"
c=$(put "$SCRATCH/crash.symtab-only" "$FIX_ID/debuginfo" "${AUTH[@]}")
curl -s -o "$SCRATCH/served" "$A_URL/buildid/$FIX_ID/debuginfo"
[[ $c == 201 ]] && cmp -s "$SCRATCH/served" "$FIX/crash.debug" && ok stripped_never_shadows_debuginfo \
	|| fail stripped_never_shadows_debuginfo "$c"
# Same content twice: one blob.
put "$FIX/crash.debug" "$FIX_ID/debuginfo" "${AUTH[@]}" >/dev/null
n=$(find "$SCRATCH/data/blobs" -type f | xargs -r cmp -s "$FIX/crash.debug" 2>/dev/null; \
    for f in $(find "$SCRATCH/data/blobs" -type f); do cmp -s "$f" "$FIX/crash.debug" && echo x; done | wc -l)
[[ $n == 1 ]] && ok upload_dedup || fail upload_dedup "$n copies"

# Uploads off without --token-file.
start_server B --data "$SCRATCH/dataB" || fail server_b
[[ $(curl -s -o /dev/null -w '%{http_code}' -T "$FIX/crash.debug" -H "Authorization: Bearer s3cret-token" \
	"$B_URL/buildid/$FIX_ID/debuginfo") == 403 ]] && ok uploads_off_without_tokens || fail uploads_off_without_tokens

# Crash safety: kill -9 in the middle of a slow 4 MB upload.
big_id=$(build_id_of "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)")
LIBC_DEBUG=/usr/lib/debug/.build-id/${big_id:0:2}/${big_id:2}.debug
curl -s -o /dev/null --limit-rate 400k -T "$LIBC_DEBUG" "${AUTH[@]}" "$A_URL/buildid/$big_id/debuginfo" &
cpid=$!
sleep 1.5
# (A_PID is `timeout`, which cannot forward SIGKILL: kill the server itself.)
kill -9 "$(pgrep -P "$A_PID")"; wait "$cpid" 2>/dev/null; wait "$A_PID" 2>/dev/null
SERVERS=("${SERVERS[@]/$A_PID}")
start_server A --data "$SCRATCH/data" --token-file "$SCRATCH/tokens" --max-upload 8000000 || fail restart
c=$(http_code -I "$A_URL/buildid/$big_id/debuginfo") tmp=$(ls "$SCRATCH/data/tmp")
integ=$(sqlite3 "$SCRATCH/data/index.sqlite" 'PRAGMA integrity_check')
[[ $c == 404 && -z $tmp && $integ == ok ]] && ok kill9_during_upload_consistent \
	|| fail kill9_during_upload_consistent "HEAD $c, tmp: $tmp, integrity: $integ"
curl -s -o "$SCRATCH/served" "$A_URL/buildid/$FIX_ID/debuginfo"
check restart_keeps_uploads cmp "$SCRATCH/served" "$FIX/crash.debug"
[[ $(put "$LIBC_DEBUG" "$big_id/debuginfo" "${AUTH[@]}") == 201 ]] || fail reupload
got=$(DEBUGINFOD_URLS=$A_URL debuginfod-find debuginfo "$big_id" 2>&1)
check reupload_whole cmp "$got" "$LIBC_DEBUG"
finish
