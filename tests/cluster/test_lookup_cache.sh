#!/usr/bin/env bash
# The replicas' lookup cache (store.c) against another replica's writes:
# two replicas over one PostgreSQL (blobs in one shared directory).  B
# answers 404 for a build-ID, twice, so the answer is in its cache (its
# lookup_cache_hits_total says so); A accepts the upload (201); B must then
# serve the artifact at once, for the notice of A's commit voids B's cached
# 404.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/cluster/lib.sh"
scratch
S=$SCRATCH
if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
	skip lookup_cache "PostgreSQL 15 not installed (make deps-test)"
	exit 0
fi
declare -A PID PORT
cleanup() {
	local r
	for r in A B; do [[ -n ${PID[$r]:-} ]] && kill "${PID[$r]}" 2>/dev/null; done
	wait 2>/dev/null
	pg_stop "$S/pg"
	rm -rf "$S"
}
trap cleanup EXIT
pg_start "$S/pg" || { fail lookup_cache_pg_start "$(tail -3 "$S/pg/initdb.log" 2>/dev/null)"; finish; }
. "$S/pg/env"
echo cache-token >"$S/tokens"
AUTH=(-H 'Authorization: Bearer cache-token')
for r in A B; do
	"$BIN/debuginfod-lite" --listen 127.0.0.1:0 --port-file "$S/$r.port" --data "$S/$r" \
		--db "$PG_URL" --blobs "file:$S/blobs" --token-file "$S/tokens" 2>"$S/$r.log" &
	PID[$r]=$!
	for _ in $(seq 100); do [[ -s $S/$r.port ]] && break; sleep 0.1; done
	[[ -s $S/$r.port ]] || { fail "lookup_cache_start_$r" "$(tail -3 "$S/$r.log")"; finish; }
	PORT[$r]=$(cat "$S/$r.port")
done
url() { echo "http://127.0.0.1:${PORT[$1]}"; }
code() { curl -g -s -o /dev/null -w '%{http_code}' "$@"; }
hits() { curl -s "$(url B)/metrics" | awk '$1 == "lookup_cache_hits_total" { print $2 }'; }
build_id_of() { readelf -n "$1" 2>/dev/null | awk '/Build ID/ { print $3; exit }'; }

# A few small executables with build-IDs, each a fresh artifact.
files=()
for f in /usr/bin/*; do
	f=$(readlink -f "$f")
	sz=$(stat -c %s "$f" 2>/dev/null || echo 0)
	((sz > 10000 && sz < 200000)) && [[ -n $(build_id_of "$f") ]] || continue
	[[ " ${files[*]} " == *" $f "* ]] || files+=("$f")
	((${#files[@]} == 5)) && break
done
((${#files[@]} == 5)) || { skip lookup_cache "fewer than 5 small executables with build-IDs"; exit 0; }

cached=1 served=1 why=""
for f in "${files[@]}"; do
	id=$(build_id_of "$f")
	u=buildid/$id/executable
	c1=$(code "$(url B)/$u")
	h0=$(hits)
	c2=$(code "$(url B)/$u")
	h1=$(hits)
	[[ $c1 == 404 && $c2 == 404 && $h1 -gt $h0 ]] || { cached=0; why="$c1 $c2 hits $h0 -> $h1"; }
	cu=$(code "${AUTH[@]}" -T "$f" "$(url A)/$u")
	curl -g -s -o "$S/got" -w '%{http_code}' "$(url B)/$u" >"$S/code"
	if [[ $cu != 201 ]] || ! cmp -s "$S/got" "$f"; then
		served=0 why="upload $cu, then B answered $(cat "$S/code") for $f"
	fi
done
# B's own upload voids B's own cached 404 at once, without waiting for the
# notice: the backend of B's listening connection is frozen (SIGSTOP), so no
# notice can reach B until it is thawed.
more=()
for f in /usr/bin/*; do
	f=$(readlink -f "$f")
	sz=$(stat -c %s "$f" 2>/dev/null || echo 0)
	((sz > 10000 && sz < 200000)) && [[ -n $(build_id_of "$f") ]] || continue
	[[ " ${files[*]} ${more[*]} " == *" $f "* ]] || more+=("$f")
	((${#more[@]} == 2)) && break
done
listener=$(psql "$PG_URL" -qAt -c "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'" | head -2)
own=1 why_own=""
if [[ $(wc -w <<<"$listener") != 2 || ${#more[@]} != 2 ]]; then
	own=0 why_own="listeners '$listener', files ${#more[@]}"
else
	for f in "${more[@]}"; do
		id=$(build_id_of "$f")
		u=buildid/$id/executable
		c1=$(code "$(url B)/$u"); c2=$(code "$(url B)/$u")
		kill -STOP $listener
		cu=$(code "${AUTH[@]}" -T "$f" "$(url B)/$u")
		curl -g -s -o "$S/got" -w '%{http_code}' "$(url B)/$u" >"$S/code"
		kill -CONT $listener
		if [[ $c1 != 404 || $c2 != 404 || $cu != 201 ]] || ! cmp -s "$S/got" "$f"; then
			own=0 why_own="404s $c1 $c2, own upload $cu, then B answered $(cat "$S/code") for $f"
		fi
	done
fi
((own)) && ok lookup_cache_own_201_voids_own_404 || fail lookup_cache_own_201_voids_own_404 "$why_own"
((cached)) && ok lookup_cache_404_cached || fail lookup_cache_404_cached "$why"
((served)) && ok lookup_cache_201_elsewhere_voids_404 ||
	fail lookup_cache_201_elsewhere_voids_404 "$why"

finish
