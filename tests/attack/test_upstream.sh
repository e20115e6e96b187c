#!/usr/bin/env bash
# Upstream amplification: random unknown build-IDs must not turn into one
# upstream fetch each.  A debuginfod-lite federates to an upstream that
# counts the requests it answers (another debuginfod-lite with an empty
# store: every answer a 404).  One client fires 300 random build-IDs; the
# upstream sees at most the per-client cap's worth, a second loopback
# client still gets its fetch through, refusals are resets (never a miss
# that libdebuginfod would cache), /metrics counts them, and a known miss
# is still answered from the negative cache.  Then the same for the global
# cap.  The bounds are the bucket's burst plus its rate times the time the
# burst took (measured), so no timing is asserted.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
dil_start UP --data "$SCRATCH/up" --rescan 0
upstream_asked() { metric "$UP_URL" 'http_responses_total{route="buildid",code="404"}'; }
python3 -c 'import os; [print(os.urandom(20).hex()) for _ in range(400)]' >"$SCRATCH/ids"
now() { date +%s.%N; }
# The most a bucket of BURST refilled at PER_MINUTE lets through in SECONDS.
cap_worth() { python3 -c 'import math,sys; b,r,t=map(float,sys.argv[1:]); print(int(b + math.ceil(r * t / 60)))' "$@"; }
# burst URL FIRST COUNT [curl options]: one request per build-ID, in order;
# prints the status codes (000: connection reset).
burst() {
	local url=$1 first=$2 count=$3; shift 3
	sed -n "${first},$((first + count - 1))p" "$SCRATCH/ids" | while read -r id; do
		curl -s -o /dev/null -w '%{http_code}\n' -m 10 "$@" "$url/buildid/$id/debuginfo"
	done
}

# Per client: 3 a minute, global cap out of the way; over the cap at once
# (--upstream-wait 0: the waiting is checked at the end).
dil_start A --data "$SCRATCH/a" --upstream "$UP_URL" --upstream-timeout 2 \
	--upstream-client-rate 3/m --upstream-rate 1000/s --upstream-wait 0
u0=$(upstream_asked)
t0=$(now)
burst "$A_URL" 1 300 >"$SCRATCH/codes1"
t1=$(now)
asked=$(( $(upstream_asked) - u0 ))
worth=$(cap_worth 3 3 "$(python3 -c "print($t1 - $t0)")")
n404=$(grep -c '^404$' "$SCRATCH/codes1") nreset=$(grep -c '^000$' "$SCRATCH/codes1")
echo "one client, 300 unknown build-IDs: upstream asked $asked times (cap's worth $worth); $n404 answered 404, $nreset reset"
(( asked >= 1 && asked <= worth )) && ok client_cap_bounds_upstream ||
	fail client_cap_bounds_upstream "upstream asked $asked times, the cap allows $worth"
(( n404 == asked && n404 + nreset == 300 )) && ok refused_is_reset_not_miss ||
	fail refused_is_reset_not_miss "$n404 404s for $asked upstream requests, $nreset resets, $(sort "$SCRATCH/codes1" | uniq -c | tr '\n' ' ')"
refused=$(metric "$A_URL" 'upstream_refused_total{cap="client"}')
(( refused >= 300 - worth )) && ok metrics_client_refusals || fail metrics_client_refusals "refused{cap=client}=$refused"

# Another client (127.0.0.2) is not held back by the first one's bucket.
u1=$(upstream_asked)
code=$(burst "$A_URL" 301 1 --interface 127.0.0.2)
[[ $code == 404 && $(upstream_asked) == $((u1 + 1)) ]] && ok second_client_gets_through ||
	fail second_client_gets_through "answer $code, upstream asked $(( $(upstream_asked) - u1 )) times"

# A miss already answered stays a cached 404, even for a capped client.
first_miss=$(paste -d' ' "$SCRATCH/codes1" <(head -300 "$SCRATCH/ids") | awk '$1 == 404 { print $2; exit }')
u2=$(upstream_asked)
code=$(http_code "$A_URL/buildid/$first_miss/debuginfo")
[[ -n $first_miss && $code == 404 && $(upstream_asked) == "$u2" ]] && ok negative_cache_still_served ||
	fail negative_cache_still_served "id '$first_miss': $code, upstream asked $(( $(upstream_asked) - u2 ))"

# A refused build-ID was not remembered as a miss: asked again once a
# bucket has room (the second client's).
first_reset=$(paste -d' ' "$SCRATCH/codes1" <(head -300 "$SCRATCH/ids") | awk '$1 == "000" { print $2; exit }')
u3=$(upstream_asked)
code=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "$A_URL/buildid/$first_reset/debuginfo")
[[ -n $first_reset && $code == 404 && $(upstream_asked) == $((u3 + 1)) ]] && ok refused_not_cached_as_miss ||
	fail refused_not_cached_as_miss "id '$first_reset': $code, upstream asked $(( $(upstream_asked) - u3 ))"

# libdebuginfod over the cap: a transport error, nothing cached for 10 minutes.
id=$(sed -n 302p "$SCRATCH/ids")
DEBUGINFOD_CACHE_PATH=$SCRATCH/dcache DEBUGINFOD_URLS=$A_URL DEBUGINFOD_RETRY_LIMIT=0 \
	timeout 60 debuginfod-find debuginfo "$id" >/dev/null 2>&1
neg=$(find "$SCRATCH/dcache" -name debuginfo 2>/dev/null)
[[ -z $neg ]] && ok capped_client_caches_nothing || fail capped_client_caches_nothing "$neg"

# Global: 5 a minute for the whole server, no per-client cap; two clients.
dil_start G --data "$SCRATCH/g" --upstream "$UP_URL" --upstream-timeout 2 \
	--upstream-rate 5/m --upstream-client-rate 0 --upstream-wait 0
u4=$(upstream_asked)
t0=$(now)
burst "$G_URL" 310 40 >"$SCRATCH/codes2"
burst "$G_URL" 350 40 --interface 127.0.0.2 >>"$SCRATCH/codes2"
t1=$(now)
asked=$(( $(upstream_asked) - u4 ))
worth=$(cap_worth 5 5 "$(python3 -c "print($t1 - $t0)")")
echo "two clients, 80 unknown build-IDs: upstream asked $asked times (global cap's worth $worth)"
(( asked >= 1 && asked <= worth )) && ok global_cap_bounds_upstream ||
	fail global_cap_bounds_upstream "upstream asked $asked times, the cap allows $worth"
refused=$(metric "$G_URL" 'upstream_refused_total{cap="global"}')
(( refused >= 80 - worth && $(grep -c '^000$' "$SCRATCH/codes2") == refused )) && ok metrics_global_refusals ||
	fail metrics_global_refusals "refused{cap=global}=$refused, $(grep -c '^000$' "$SCRATCH/codes2") resets"

# An honest burst (gdb asking for many libraries in a row) under the
# default --upstream-wait: slowed down to the cap's pace, never refused.
dil_start W --data "$SCRATCH/w" --upstream "$UP_URL" --upstream-timeout 2 \
	--upstream-client-rate 2/s
u5=$(upstream_asked)
burst "$W_URL" 391 8 >"$SCRATCH/codes3"
n404=$(grep -c '^404$' "$SCRATCH/codes3")
delayed=$(metric "$W_URL" upstream_delayed_total)
[[ $n404 == 8 && $(( $(upstream_asked) - u5 )) == 8 ]] && (( delayed >= 1 )) && ok burst_waits_not_refused ||
	fail burst_waits_not_refused "$(sort "$SCRATCH/codes3" | uniq -c | tr '\n' ' '), delayed $delayed"
finish
