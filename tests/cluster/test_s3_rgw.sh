#!/usr/bin/env bash
# The S3 client against a real store: Ceph's RADOS Gateway from Debian's
# ceph 16.2 packages, started on loopback by tests/cluster/lib.sh.  RGW
# checks the SigV4 signature, the payload SHA-256 and the Content-MD5 of
# everything the client sends; files compare byte for byte with cmp.
. "$TOP/tests/lib/check.sh"
. "$TOP/tests/cluster/lib.sh"
scratch
missing=$(cluster_missing)
if [[ $missing == *ceph* || $missing == *radosgw* || $missing == *monmaptool* ]]; then
	skip s3_rgw "not installed: $missing (make deps-test)"; exit 0
fi
trap 'rgw_stop "$SCRATCH/rgw"; rm -rf "$SCRATCH"' EXIT
T=$TOP/$BUILD/tests/debuginfod-lite/s3_tool
if ! rgw_start "$SCRATCH/rgw"; then
	fail s3_rgw_start "$(tail -3 "$SCRATCH"/rgw/log/*.log 2>/dev/null | tr '\n' ' ')"; finish
fi
. "$SCRATCH/rgw/env"
ok s3_rgw_start
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
s3() { "$T" --endpoint "$S3_ENDPOINT" --region "$S3_REGION" --bucket dil-rgw-test "$@"; }

s3 head x >/dev/null 2>&1; rc=$?
if [[ $rc == 2 ]] && s3 mkbucket && s3 mkbucket && s3 list >"$SCRATCH/out" && [[ ! -s $SCRATCH/out ]]; then
	ok s3_rgw_bucket_created_once
else fail s3_rgw_bucket_created_once "head rc $rc"; fi

head -c 35000 /dev/urandom >"$SCRATCH/small"
if s3 put blobs/small "$SCRATCH/small" >"$SCRATCH/put" && s3 get blobs/small "$SCRATCH/small.got" >"$SCRATCH/get" &&
	cmp -s "$SCRATCH/small" "$SCRATCH/small.got" &&
	[[ $(awk '{print $2}' "$SCRATCH/put") == $(md5sum <"$SCRATCH/small" | cut -c1-32) ]]; then
	ok s3_rgw_put_get_identical
else fail s3_rgw_put_get_identical "$(cat "$SCRATCH/put" "$SCRATCH/get" | tr '\n' ' ')"; fi
if [[ $(s3 head blobs/small | awk '{print $1}') == 35000 ]]; then ok s3_rgw_head_size
else fail s3_rgw_head_size "$(s3 head blobs/small 2>&1)"; fi

# A key with characters that need encoding in the signed path.
if s3 put "blobs/a b+c&d=é" "$SCRATCH/small" >/dev/null && s3 list "blobs/a " | grep -q '^blobs/a b+c&d=é 35000 '; then
	ok s3_rgw_key_encoding
else fail s3_rgw_key_encoding "$(s3 list blobs/ 2>&1 | tr '\n' ' ')"; fi

# Listing across pages (continuation tokens), with a prefix.
for i in 1 2 3 4 5; do s3 put "page/k$i" "$SCRATCH/small" >/dev/null; done
if [[ $(s3 --page-keys 2 list page/ | grep -c '^page/k') == 5 ]]; then ok s3_rgw_list_pages
else fail s3_rgw_list_pages "$(s3 --page-keys 2 list page/ 2>&1 | tr '\n' ' ')"; fi

# Multipart: 80 MB in 16 MiB parts, streamed both ways (the tool's peak RSS
# stays far below the object's size).
head -c 80000000 /dev/urandom >"$SCRATCH/big"
if command -v /usr/bin/time >/dev/null; then timed=(/usr/bin/time -f %M -o "$SCRATCH/rss"); else timed=(); fi
if "${timed[@]}" "$T" --endpoint "$S3_ENDPOINT" --bucket dil-rgw-test put blobs/big "$SCRATCH/big" >"$SCRATCH/put" &&
	grep -q -- '-5$' "$SCRATCH/put"; then
	ok s3_rgw_multipart_put
else fail s3_rgw_multipart_put "$(cat "$SCRATCH/put")"; fi
put_rss=$(cat "$SCRATCH/rss" 2>/dev/null)
if "${timed[@]}" "$T" --endpoint "$S3_ENDPOINT" --bucket dil-rgw-test get blobs/big "$SCRATCH/big.got" >/dev/null &&
	cmp -s "$SCRATCH/big" "$SCRATCH/big.got"; then
	ok s3_rgw_multipart_get_identical_etag_checked
else fail s3_rgw_multipart_get_identical_etag_checked "differs"; fi
get_rss=$(cat "$SCRATCH/rss" 2>/dev/null)
if [[ -z $put_rss ]]; then skip s3_rgw_streamed "no /usr/bin/time"
elif ((put_rss < 40000 && get_rss < 40000)); then ok s3_rgw_streamed
else fail s3_rgw_streamed "peak RSS put ${put_rss} KB, get ${get_rss} KB for an 80 MB object"; fi
rm -f "$SCRATCH/big" "$SCRATCH/big.got"

if s3 delete blobs/big && ! s3 head blobs/big 2>/dev/null && s3 delete blobs/big; then ok s3_rgw_delete
else fail s3_rgw_delete "still there"; fi

# Credentials from a file; a wrong secret is refused (EACCES), not retried.
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$SCRATCH/creds"
if env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$T" --endpoint "$S3_ENDPOINT" --bucket dil-rgw-test \
	--credentials "$SCRATCH/creds" head blobs/small >/dev/null; then
	ok s3_rgw_credentials_file
else fail s3_rgw_credentials_file "refused"; fi
AWS_SECRET_ACCESS_KEY=wrong "$T" --endpoint "$S3_ENDPOINT" --bucket dil-rgw-test --stats head blobs/small >"$SCRATCH/out" 2>&1; rc=$?
if [[ $rc == 13 ]] && grep -q 'requests=1 ' "$SCRATCH/out"; then ok s3_rgw_wrong_secret_refused
else fail s3_rgw_wrong_secret_refused "rc $rc $(tr '\n' ' ' <"$SCRATCH/out")"; fi
finish
