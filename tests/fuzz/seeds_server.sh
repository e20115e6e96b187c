#!/usr/bin/env bash
# Seed corpus for fuzz_server: /buildid/ paths (good, traversal, odd ids),
# Range and Accept-Encoding headers, globs, and /symbolize bodies.
# usage: seeds_server.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
i=0
seed() { printf '%s' "$1" >"$out/seed_$((i++))"; }
id=93ac61ec5a8eb1396f9fbd350e3169a558528a40
for p in debuginfo executable unwind section/.debug_info section/ section/a/b \
	source/usr/src/a.c source/../../etc/passwd source/usr/./src//b/../a.c \
	source/ source/a/.. source/.. "source/$(printf 'x/%.0s' {1..300})" bogus; do
	seed "$id/$p"
done
seed "$id"; seed "ABCD/debuginfo"; seed "abc/debuginfo"; seed "/debuginfo"; seed ""
seed "$(printf 'ab%.0s' {1..70})/debuginfo"
for h in "bytes=0-99" "bytes=-5" "bytes=10-" "bytes=5-1" "bytes=0-1,4-5" "bytes=99999999999999999999-" \
	"bytes=-0" "bytes=-" "items=1-2" "gzip, deflate, br, zstd" "zstd;q=0, gzip;q=0.5" "*;q=0" \
	"x-gzip" "gzip;q=0.000" "/usr/lib/*/libc.so*" "[!a]*" "\\" "[" ; do
	seed "$h"
done
seed '{"requests":[{"build_id":"'$id'","addresses":["0x9a0a0",639136,"1a"],"kind":"return"}]}'
seed '{"requests":[{"build_id":"'$id'","addresses":[],"kind":"leaf","inlines":false},{"build_id":"00ff","addresses":["0x1"],"kind":"adjusted"}]}'
seed '{"requests":[{"build_id":"'$id'","addresses":["0xZZ"]}]}'
seed '{"requests":[{"build_id":"'$id'","build_id":"00","addresses":[1]}]}'
seed '{"requests":[{"build_id":"ab\u0000cd","addresses":[-1, 1.5, null, true]}]}'
seed '{"requests":{}}'
seed '{"requests":[], "extra":1}'
seed '[1,2,3]'
for q in "id=1&id=2" "id=99999999999999999999" "from=1&to=2&label=a=b&label=c=d" "a%00b" "%0a%0d" \
	"%zz%4" "%%41" "value=x%7f" "$(printf 'a\001\177\377')" "x=$(printf 'k%.0s&' {1..70})"; do
	seed "$q"
done
seed '{"requests":[{"build_id":"'$id'","addresses":["0x11112222333344445"]}]}'
python3 -c 'print("[" * 5000 + "]" * 5000, end="")' >"$out/seed_deep"
python3 -c 'import json; print(json.dumps({"requests":[{"build_id":"ab","addresses":list(range(5000))}]}), end="")' \
	>"$out/seed_many"
