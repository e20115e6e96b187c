#!/usr/bin/env bash
# GET /metadata?key=file|glob&value=…: the answer elfutils gives (checked
# with debuginfod-find metadata when this elfutils has it), bad keys → 400,
# upstream answers merged in.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
dil_start A --data "$SCRATCH/a" --scan "$LIBC" --scan "$FIX" --rescan 0
wait_for "$A_URL/buildid/$FIX_ID/debuginfo" && wait_for "$A_URL/buildid/$LIBC_ID/executable" || fail scan
curl -s -D "$SCRATCH/h" -o "$SCRATCH/file.json" --get --data-urlencode key=file \
	--data-urlencode "value=$LIBC" "$A_URL/metadata"
curl -s -o "$SCRATCH/glob.json" --get --data-urlencode key=glob \
	--data-urlencode "value=$FIX/crash*" "$A_URL/metadata"
curl -s -o "$SCRATCH/globdir.json" --get --data-urlencode key=glob \
	--data-urlencode "value=${FIX%/*}/*" "$A_URL/metadata"
curl -s -o "$SCRATCH/none.json" --get --data-urlencode key=file \
	--data-urlencode "value=/nonexistent" "$A_URL/metadata"
grep -qi '^content-type: application/json' "$SCRATCH/h" && ok metadata_content_type \
	|| fail metadata_content_type
python3 - "$SCRATCH" "$LIBC" "$LIBC_ID" "$FIX" "$FIX_ID" >"$SCRATCH/res" <<'PY'
import json, sys
d, libc, libc_id, fix, fix_id = sys.argv[1:]
load = lambda n: json.load(open(f"{d}/{n}.json"))
f = load("file")
want = {"results": [{"type": "executable", "buildid": libc_id, "file": libc}], "complete": True}
print("ok metadata_file" if f == want else f"FAIL metadata_file: {f}")
g = load("glob")
got = sorted((r["type"], r["buildid"], r["file"]) for r in g["results"])
want = sorted([("executable", fix_id, f"{fix}/crash"), ("debuginfo", fix_id, f"{fix}/crash"),
               ("executable", fix_id, f"{fix}/crash.stripped"), ("debuginfo", fix_id, f"{fix}/crash.debug")])
print("ok metadata_glob" if got == want and g["complete"] else f"FAIL metadata_glob: {got} want {want}")
# FNM_PATHNAME: "*" does not cross "/", so the parent glob matches nothing below it
gd = load("globdir")
print("ok metadata_glob_pathname" if gd["results"] == [] else f"FAIL metadata_glob_pathname: {gd}")
n = load("none")
print("ok metadata_no_match" if n == {"results": [], "complete": True} else f"FAIL metadata_no_match: {n}")
PY
while IFS= read -r l; do echo "$l"; [[ $l == FAIL* ]] && _check_failed=1; done <"$SCRATCH/res"
[[ $(http_code "$A_URL/metadata?key=file") == 400 ]] && ok metadata_need_value || fail metadata_need_value
[[ $(http_code "$A_URL/metadata?key=bogus&value=x") == 400 ]] && ok metadata_bad_key || fail metadata_bad_key
# Federated as elfutils does: A is the upstream of D.  D merges A's answer;
# a dead upstream makes the answer incomplete; past the X-Forwarded-For hop
# limit D answers from its own index only.
DEAD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dil_start D --data "$SCRATCH/d" --scan "$LIBC" --rescan 0 --upstream "$A_URL" --upstream-timeout 2
dil_start X --data "$SCRATCH/x" --scan "$LIBC" --rescan 0 --upstream "$A_URL" \
	--upstream "http://127.0.0.1:$DEAD_PORT" --upstream-timeout 2
wait_for "$D_URL/buildid/$LIBC_ID/executable" && wait_for "$X_URL/buildid/$LIBC_ID/executable" || fail scan_dx
meta() { curl -s --get --data-urlencode key=glob --data-urlencode "value=$2" "${@:3}" "$1/metadata"; }
meta "$D_URL" "$FIX/crash*" >"$SCRATCH/fed.json"
meta "$D_URL" "$LIBC" >"$SCRATCH/fedlibc.json"
meta "$X_URL" "$FIX/crash*" >"$SCRATCH/dead.json"
meta "$D_URL" "$FIX/crash*" -H 'X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4, 5.5.5.5, 6.6.6.6, 7.7.7.7, 8.8.8.8' \
	>"$SCRATCH/hops.json"
python3 - "$SCRATCH" "$LIBC" "$LIBC_ID" "$FIX" "$FIX_ID" >"$SCRATCH/res" <<'PY'
import json, sys
d, libc, libc_id, fix, fix_id = sys.argv[1:]
load = lambda n: json.load(open(f"{d}/{n}.json"))
rows = lambda j: sorted((r["type"], r["buildid"], r["file"]) for r in j["results"])
want = sorted([("executable", fix_id, f"{fix}/crash"), ("debuginfo", fix_id, f"{fix}/crash"),
               ("executable", fix_id, f"{fix}/crash.stripped"), ("debuginfo", fix_id, f"{fix}/crash.debug")])
f = load("fed")
print("ok metadata_federated" if rows(f) == want and f["complete"] is True
      else f"FAIL metadata_federated: {f}")
# libc is in both: listed once
l = load("fedlibc")
print("ok metadata_federated_no_duplicates" if rows(l) == [("executable", libc_id, libc)] and l["complete"]
      else f"FAIL metadata_federated_no_duplicates: {l}")
x = load("dead")
print("ok metadata_dead_upstream_incomplete" if x["complete"] is False and rows(x) == want
      else f"FAIL metadata_dead_upstream_incomplete: {x}")
h = load("hops")
print("ok metadata_hop_limit" if h == {"results": [], "complete": True} else f"FAIL metadata_hop_limit: {h}")
PY
while IFS= read -r l; do echo "$l"; [[ $l == FAIL* ]] && _check_failed=1; done <"$SCRATCH/res"

# libdebuginfod's own client, where this elfutils has it (0.192+).
if debuginfod-find --help 2>&1 | grep -q metadata; then
	DEBUGINFOD_URLS=$A_URL debuginfod-find metadata file "$LIBC" >"$SCRATCH/df.json" 2>/dev/null
	grep -q "$LIBC_ID" "$SCRATCH/df.json" && ok metadata_debuginfod_find || fail metadata_debuginfod_find
else
	skip metadata_debuginfod_find "debuginfod-find $(debuginfod-find --version 2>&1 | head -1 | awk '{print $NF}') has no metadata query (0.192+)"
fi
finish
