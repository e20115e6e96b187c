#!/usr/bin/env bash
# The server on aarch64 objects (Debian's arm64 glibc and libc6-dbg:arm64,
# tests/lib/arm64_root.sh): GET /buildid/<id>/unwind serves the aarch64
# table (header arch 183), POST /symbolize names arm64 addresses as
# `symbolize` and llvm-symbolizer do.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
if ! ROOT=$("$TOP/tests/lib/arm64_root.sh" 2>/dev/null); then
	skip arm64-server "cannot fetch Debian arm64 packages"; finish
fi
dil_setup
A64_LIBC=$ROOT/lib/aarch64-linux-gnu/libc.so.6
A64_ID=$(build_id_of "$A64_LIBC")
A64_DBG=$ROOT/usr/lib/debug/.build-id/${A64_ID:0:2}/${A64_ID:2}.debug
[[ -r $A64_DBG ]] || { skip arm64-server "no libc6-dbg:arm64 debug file for $A64_ID"; finish; }
report() { local l; while IFS= read -r l; do echo "$l"; [[ $l == FAIL* ]] && _check_failed=1; done; return 0; }
dil_start A --data "$SCRATCH/a" --scan "$A64_LIBC" --scan "$A64_DBG" --rescan 0
wait_for "$A_URL/buildid/$A64_ID/executable" && wait_for "$A_URL/buildid/$A64_ID/debuginfo" || fail scan

"$BIN/unwind-compile" "$A64_LIBC" -o "$SCRATCH/want.unwind"
curl -s -o "$SCRATCH/got.unwind" "$A_URL/buildid/$A64_ID/unwind"
check arm64_unwind_equals_cli cmp "$SCRATCH/got.unwind" "$SCRATCH/want.unwind"
arch=$(python3 -c 'import struct,sys; print(struct.unpack_from("<H", open(sys.argv[1],"rb").read(), 6)[0])' "$SCRATCH/got.unwind")
[[ $arch == 183 ]] && ok arm64_unwind_header_arch || fail arm64_unwind_header_arch "$arch"

# The CLI reads the debug file itself (its .build-id directory is not this
# machine's /usr/lib/debug); the server pairs it with the executable.
for kind in return leaf; do
	python3 "$TOP/tests/debuginfod-lite/symbolize_compare.py" "$A_URL" "$A64_ID" "$A64_DBG" "$A64_DBG" \
		1000 $kind "$BIN/symbolize" >"$SCRATCH/cmp.$kind"
	sed 's/symbolize_/symbolize_arm64_/' "$SCRATCH/cmp.$kind" | report
done
finish
