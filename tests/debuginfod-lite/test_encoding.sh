#!/usr/bin/env bash
# Content-Encoding: gzip/zstd for unwind tables, sources, sections and JSON
# answers when the client asks (decoded with gzip(1), zstd(1) and curl
# --compressed, compared with the identity bytes); never for debuginfo /
# executables (zero-copy), Range requests or a refused coding (q=0).
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/debuginfod-lite/lib.sh"
dil_setup
SRC=$TOP/tests/fixtures/debuginfod-lite/crash.c
DBG=/usr/lib/debug/.build-id/${LIBC_ID:0:2}/${LIBC_ID:2}.debug
dbg_scan=(); [[ -r $DBG ]] && dbg_scan=(--scan "$DBG")
dil_start A --data "$SCRATCH/a" --scan "$LIBC" "${dbg_scan[@]}" --scan "$FIX" \
	--source-root "$TOP/tests/fixtures" --rescan 0
wait_for "$A_URL/buildid/$LIBC_ID/executable" && wait_for "$A_URL/buildid/$FIX_ID/debuginfo" || fail scan
U=$A_URL/buildid/$LIBC_ID/unwind
"$BIN/unwind-compile" "$LIBC" -o "$SCRATCH/want.unwind"
hdr() { tr -d '\r' <"$1" | awk -F': ' -v k="$2" 'tolower($1)==k { print $2 }'; }
get() { # NAME ACCEPT URL → $SCRATCH/NAME.{h,body}
	curl -s -D "$SCRATCH/$1.h" -o "$SCRATCH/$1.body" -H "Accept-Encoding: $2" "$3"
}
get id identity "$U"
get gz "gzip, deflate" "$U"
get zs "zstd" "$U"
get both "gzip, zstd" "$U"
get noz "zstd;q=0, gzip" "$U"
get star "*" "$U"
[[ -z $(hdr "$SCRATCH/id.h" content-encoding) ]] && cmp -s "$SCRATCH/id.body" "$SCRATCH/want.unwind" \
	&& ok encoding_identity || fail encoding_identity
[[ $(hdr "$SCRATCH/gz.h" content-encoding) == gzip ]] && gzip -dc <"$SCRATCH/gz.body" | cmp -s - "$SCRATCH/want.unwind" \
	&& ok encoding_gzip_unwind || fail encoding_gzip_unwind "$(hdr "$SCRATCH/gz.h" content-encoding)"
[[ $(hdr "$SCRATCH/zs.h" content-encoding) == zstd ]] && zstd -dc <"$SCRATCH/zs.body" | cmp -s - "$SCRATCH/want.unwind" \
	&& ok encoding_zstd_unwind || fail encoding_zstd_unwind "$(hdr "$SCRATCH/zs.h" content-encoding)"
[[ $(hdr "$SCRATCH/both.h" content-encoding) == zstd ]] && ok encoding_prefers_zstd || fail encoding_prefers_zstd
[[ $(hdr "$SCRATCH/noz.h" content-encoding) == gzip ]] && ok encoding_q0_refuses || fail encoding_q0_refuses
[[ $(hdr "$SCRATCH/star.h" content-encoding) == zstd ]] && ok encoding_star || fail encoding_star
[[ $(stat -c %s "$SCRATCH/gz.body") -lt $(stat -c %s "$SCRATCH/want.unwind") ]] && ok encoding_smaller \
	|| fail encoding_smaller
[[ $(hdr "$SCRATCH/gz.h" x-debuginfod-size) == $(stat -c %s "$SCRATCH/want.unwind") ]] \
	&& [[ $(hdr "$SCRATCH/gz.h" vary) == Accept-Encoding ]] && ok encoding_headers || fail encoding_headers
# Another representation, another ETag; either one revalidates.
tag=$(hdr "$SCRATCH/gz.h" etag)
[[ $tag == *-gzip\" && $tag != "$(hdr "$SCRATCH/id.h" etag)" ]] && \
	[[ $(http_code -H "Accept-Encoding: gzip" -H "If-None-Match: $tag" "$U") == 304 ]] \
	&& ok encoding_etag || fail encoding_etag "$tag"
# Range: the identity bytes asked for.
curl -s -D "$SCRATCH/r.h" -o "$SCRATCH/r.body" -H "Accept-Encoding: gzip" -r 100-199 "$U"
[[ -z $(hdr "$SCRATCH/r.h" content-encoding) ]] && cmp -s "$SCRATCH/r.body" <(tail -c +101 "$SCRATCH/want.unwind" | head -c 100) \
	&& ok encoding_not_with_range || fail encoding_not_with_range
# Debuginfo stays zero-copy and uncompressed.
get dbg "gzip, zstd" "$A_URL/buildid/$FIX_ID/debuginfo"
[[ -z $(hdr "$SCRATCH/dbg.h" content-encoding) ]] && cmp -s "$SCRATCH/dbg.body" "$(hdr "$SCRATCH/dbg.h" x-debuginfod-file)" \
	&& ok encoding_not_for_debuginfo || fail encoding_not_for_debuginfo
# HEAD: no body to encode.
[[ -z $(curl -s -I -H "Accept-Encoding: gzip" "$U" | tr -d '\r' | grep -i '^content-encoding') ]] \
	&& ok encoding_head_identity || fail encoding_head_identity
# Sources and sections through curl's own decoder.
curl -s --compressed -D "$SCRATCH/src.h" -o "$SCRATCH/src.body" "$A_URL/buildid/$FIX_ID/source$SRC"
[[ -n $(hdr "$SCRATCH/src.h" content-encoding) ]] && cmp -s "$SCRATCH/src.body" "$SRC" \
	&& ok encoding_source_curl || fail encoding_source_curl "$(hdr "$SCRATCH/src.h" content-encoding)"
objcopy --dump-section .debug_info="$SCRATCH/want.info" "$FIX/crash" "$SCRATCH/junk"
curl -s --compressed -D "$SCRATCH/sec.h" -o "$SCRATCH/sec.body" "$A_URL/buildid/$FIX_ID/section/.debug_info"
[[ -n $(hdr "$SCRATCH/sec.h" content-encoding) ]] && cmp -s "$SCRATCH/sec.body" "$SCRATCH/want.info" \
	&& ok encoding_section_curl || fail encoding_section_curl
# JSON answers.
printf '{"requests":[{"build_id":"%s","addresses":["0x9a0a0","0x28000","0x40000","0x50000"]}]}' \
	"$LIBC_ID" >"$SCRATCH/one.json"
curl -s -o "$SCRATCH/sy.id" -X POST --data-binary @"$SCRATCH/one.json" "$A_URL/symbolize"
curl -s -D "$SCRATCH/sy.h" -o "$SCRATCH/sy.zs" -H "Accept-Encoding: zstd" -X POST \
	--data-binary @"$SCRATCH/one.json" "$A_URL/symbolize"
[[ $(hdr "$SCRATCH/sy.h" content-encoding) == zstd ]] && zstd -dc <"$SCRATCH/sy.zs" | cmp -s - "$SCRATCH/sy.id" \
	&& grep -q '"line"' "$SCRATCH/sy.id" && ok encoding_symbolize_json || fail encoding_symbolize_json
finish
