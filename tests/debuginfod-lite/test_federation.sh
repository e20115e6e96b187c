#!/usr/bin/env bash
# Federation: a second debuginfod-lite, elfutils' debuginfod and broken
# upstreams (hang, 500, HTML).  Misses are cached; transient trouble never
# reaches libdebuginfod as a (10-minute cached) miss; concurrent identical
# requests make one upstream fetch.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
UNKNOWN=0123456789abcdef0123456789abcdef01234567

dil_start UP --data "$SCRATCH/up" --scan "$FIX/crash" --rescan 0
wait_for "$UP_URL/buildid/$FIX_ID/debuginfo" || fail upstream_scan
dil_start A --data "$SCRATCH/a" --upstream "$UP_URL" --upstream-timeout 2

got=$(DEBUGINFOD_URLS=$A_URL debuginfod-find debuginfo "$FIX_ID" 2>&1)
check federation_hit cmp "$got" "$FIX/crash"
got=$(DEBUGINFOD_URLS=$A_URL debuginfod-find executable "$FIX_ID" 2>&1)
check federation_hit_executable cmp "$got" "$FIX/crash"
n1=$(metric "$UP_URL" 'http_responses_total{route="buildid",code="200"}')
curl -s -o /dev/null "$A_URL/buildid/$FIX_ID/debuginfo"
n2=$(metric "$UP_URL" 'http_responses_total{route="buildid",code="200"}')
[[ $n1 == "$n2" ]] && ok federation_positive_cache || fail federation_positive_cache "$n1 -> $n2"
[[ $(http_code "$A_URL/buildid/$UNKNOWN/debuginfo") == 404 ]] && ok federation_miss_404 || fail federation_miss_404
m1=$(metric "$UP_URL" 'http_responses_total{route="buildid",code="404"}')
http_code "$A_URL/buildid/$UNKNOWN/debuginfo" >/dev/null
m2=$(metric "$UP_URL" 'http_responses_total{route="buildid",code="404"}')
[[ $m1 == "$m2" && $m1 -ge 1 ]] && ok federation_negative_cache || fail federation_negative_cache "$m1 -> $m2"
xff_before=$(metric "$UP_URL" 'http_responses_total{route="buildid",code="404"}')
http_code -H 'X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4, 5.5.5.5, 6.6.6.6, 7.7.7.7, 8.8.8.8' \
	"$A_URL/buildid/1111111111111111111111111111111111111111/debuginfo" >"$SCRATCH/c"
[[ $(cat "$SCRATCH/c") == 404 && $(metric "$UP_URL" 'http_responses_total{route="buildid",code="404"}') == "$xff_before" ]] \
	&& ok federation_hop_limit || fail federation_hop_limit

# Broken upstreams: the client must see a transport error (retried, not
# cached), never an HTTP error that libdebuginfod caches for 10 minutes.
for mode in hang 500 html; do
	rm -f "$SCRATCH/$mode.port"
	timeout 120 python3 "$TOP/tests/debuginfod-lite/fake_upstream.py" "$mode" "$SCRATCH/$mode.port" \
		"$SCRATCH/$mode.count" &
	SERVERS+=($!)
	for i in $(seq 50); do [[ -s $SCRATCH/$mode.port ]] && break; sleep 0.1; done
	start_server B$mode --data "$SCRATCH/b$mode" --upstream "http://127.0.0.1:$(cat "$SCRATCH/$mode.port")" \
		--upstream-timeout 2 || fail "start_$mode"
	url_var=B${mode}_URL
	cache=$SCRATCH/cache-$mode
	DEBUGINFOD_CACHE_PATH=$cache DEBUGINFOD_URLS=${!url_var} DEBUGINFOD_RETRY_LIMIT=0 \
		timeout 60 debuginfod-find debuginfo "$FIX_ID" >/dev/null 2>&1 && fail "upstream_${mode}_not_served" "found?"
	neg=$(find "$cache" -name debuginfo -size 0 2>/dev/null)
	[[ -z $neg ]] && ok "upstream_${mode}_not_cached_as_miss" || fail "upstream_${mode}_not_cached_as_miss" "$neg"
	# and our server did not cache it as a miss either: the next request asks again
	c1=$(wc -l <"$SCRATCH/$mode.count")
	curl -s -o /dev/null -m 30 "${!url_var}/buildid/$FIX_ID/debuginfo"
	c2=$(wc -l <"$SCRATCH/$mode.count")
	[[ $c2 -gt $c1 ]] && ok "upstream_${mode}_retried" || fail "upstream_${mode}_retried" "$c1 -> $c2"
done

# Concurrent identical requests: one upstream fetch.
rm -f "$SCRATCH/slow.port"
timeout 120 python3 "$TOP/tests/debuginfod-lite/fake_upstream.py" slow "$SCRATCH/slow.port" \
	"$SCRATCH/slow.count" "$FIX/crash" &
SERVERS+=($!)
for i in $(seq 50); do [[ -s $SCRATCH/slow.port ]] && break; sleep 0.1; done
start_server S --data "$SCRATCH/s" --upstream "http://127.0.0.1:$(cat "$SCRATCH/slow.port")" || fail start_slow
pids=()
for i in $(seq 20); do
	curl -s -o "$SCRATCH/conc.$i" "$S_URL/buildid/$FIX_ID/debuginfo" & pids+=($!)
done
wait "${pids[@]}"
bad=0
for i in $(seq 20); do cmp -s "$SCRATCH/conc.$i" "$FIX/crash" || bad=$((bad + 1)); done
[[ $bad == 0 ]] && ok concurrent_all_served || fail concurrent_all_served "$bad differ"
[[ $(wc -l <"$SCRATCH/slow.count") == 1 ]] && ok concurrent_one_upstream_fetch \
	|| fail concurrent_one_upstream_fetch "$(wc -l <"$SCRATCH/slow.count") fetches"

# elfutils' debuginfod as the upstream.
if command -v debuginfod >/dev/null; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$SCRATCH/eu"; cp "$FIX/crash" "$SCRATCH/eu/"
	timeout 120 debuginfod -F -p "$port" -d "$SCRATCH/eu.sqlite" -t 0 "$SCRATCH/eu" >"$SCRATCH/eu.log" 2>&1 &
	SERVERS+=($!)
	for i in $(seq 100); do
		[[ $(http_code "http://127.0.0.1:$port/buildid/$FIX_ID/debuginfo") == 200 ]] && break; sleep 0.1
	done
	start_server E --data "$SCRATCH/e" --upstream "http://127.0.0.1:$port" || fail start_e
	got=$(DEBUGINFOD_URLS=$E_URL debuginfod-find debuginfo "$FIX_ID" 2>&1)
	check elfutils_upstream_hit cmp "$got" "$FIX/crash"
	[[ $(http_code "$E_URL/buildid/$UNKNOWN/executable") == 404 ]] && ok elfutils_upstream_miss \
		|| fail elfutils_upstream_miss
else
	skip elfutils_upstream "debuginfod (elfutils) not installed"
fi
finish
