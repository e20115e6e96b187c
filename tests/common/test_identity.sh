#!/usr/bin/env bash
# The identity of objects without a GNU build-ID (docs/identity.md),
# recomputed from its definition with independent tools: the Go build-ID
# string from `go tool buildid`, the content hash with Python's hashlib.
# The same identity must come out of unwind-compile, the server's --scan and
# debuginfod-upload.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
for t in go python3 readelf cc; do
	command -v $t >/dev/null || { skip identity "$t not installed"; finish; }
done
export GOCACHE=$SCRATCH/gocache
GO=$FIXTURES/go/spin-stripped
id_of() { "$BIN/unwind-compile" --stats "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["build_id"], d["identity"])'; }

want=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(b"go-buildid\0" + sys.argv[1].encode()).hexdigest()[:40])' \
	"$(go tool buildid "$GO")")
read got kind < <(id_of "$GO")
[[ $got == "$want" && $kind == go ]] && ok identity_go_from_go_buildid ||
	fail identity_go_from_go_buildid "got $got ($kind), want $want"

# A C program linked without any build-ID note: the content hash.
printf 'int main(void){return 0;}\n' >"$SCRATCH/n.c"
cc -O1 -Wl,--build-id=none -o "$SCRATCH/noid" "$SCRATCH/n.c"
readelf -n "$SCRATCH/noid" | grep -q "Build ID" && { fail identity_content "linker wrote a build-ID"; finish; }
want=$(python3 - "$SCRATCH/noid" <<'PY'
import hashlib, struct, sys
data = open(sys.argv[1], "rb").read()
k = min(len(data), 4096)
print(hashlib.sha256(b"elf-content\0" + struct.pack("<Q", len(data)) + data[:k] + data[-k:]).hexdigest()[:32])
PY
)
read got kind < <(id_of "$SCRATCH/noid")
[[ $got == "$want" && $kind == content ]] && ok identity_content_hash ||
	fail identity_content_hash "got $got ($kind), want $want"
read got kind < <(id_of /bin/true)
[[ $got == "$(build_id_of /bin/true)" && $kind == gnu ]] && ok identity_gnu_unchanged ||
	fail identity_gnu_unchanged "got $got ($kind)"

# The server's scan names both by the same identities.
mkdir -p "$SCRATCH/scan" && cp "$GO" "$SCRATCH/noid" "$SCRATCH/scan/"
dil_start S --data "$SCRATCH/data" --scan "$SCRATCH/scan" --rescan 0 --no-watch
read go_id _ < <(id_of "$GO")
read c_id _ < <(id_of "$SCRATCH/noid")
wait_for "$S_URL/buildid/$go_id/executable" && wait_for "$S_URL/buildid/$c_id/executable" &&
	ok identity_scan_serves_by_identity ||
	fail identity_scan_serves_by_identity "$go_id / $c_id not served after --scan"
[[ $(http_code "$S_URL/buildid/$go_id/unwind") == 200 ]] && ok identity_unwind_table_by_go_identity ||
	fail identity_unwind_table_by_go_identity "GET /buildid/$go_id/unwind: $(http_code "$S_URL/buildid/$go_id/unwind")"
# POST /symbolize by the Go identity: names from .gopclntab.
addr=$(go tool nm "$FIXTURES/go/spin" | awk '$3=="main.middle" {print $1}')
out=$(curl -s -X POST -H 'Content-Type: application/json' "$S_URL/symbolize" \
	-d "{\"requests\":[{\"build_id\":\"$go_id\",\"addresses\":[\"0x$addr\"],\"kind\":\"leaf\"}]}")
grep -q '"main.middle"' <<<"$out" && ok identity_post_symbolize_go ||
	fail identity_post_symbolize_go "$out"
finish
