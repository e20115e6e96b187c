#!/usr/bin/env bash
# GET /metadata?key=file|glob&value=…: the answer elfutils gives (checked
# with debuginfod-find metadata when this elfutils has it), bad keys → 400.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
LIBC_ID=$(build_id_of "$LIBC")
FIX_ID=$(build_id_of "$FIX/crash")
start_server A --data "$SCRATCH/a" --scan "$LIBC" --scan "$FIX" --rescan 0 || { fail server_start; finish; }
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
# libdebuginfod's own client, where this elfutils has it (0.192+).
if debuginfod-find --help 2>&1 | grep -q metadata; then
	DEBUGINFOD_URLS=$A_URL debuginfod-find metadata file "$LIBC" >"$SCRATCH/df.json" 2>/dev/null
	grep -q "$LIBC_ID" "$SCRATCH/df.json" && ok metadata_debuginfod_find || fail metadata_debuginfod_find
else
	skip metadata_debuginfod_find "debuginfod-find $(debuginfod-find --version 2>&1 | head -1 | awk '{print $NF}') has no metadata query (0.192+)"
fi
finish
