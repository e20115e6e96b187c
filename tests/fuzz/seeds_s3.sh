#!/usr/bin/env bash
# Seed corpus for fuzz_s3: ListObjectsV2 pages as S3 and Ceph RGW write
# them, error documents, credentials files, and hand-made odd ones.
# usage: seeds_s3.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
i=0
seed() { printf '%b' "$1" >"$out/seed_$((i++))"; }
seed '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>a/b</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>a/c&amp;d</Key><ETag>"x-2"</ETag><Size>18446744073709551615</Size></Contents></ListBucketResult>'
seed '<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>'
seed '<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>'
seed '<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>'
seed '<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size></Contents>'
seed '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><ListBucketResult><Contents><Key>&b;</Key></Contents></ListBucketResult>'
seed "<ListBucketResult><Contents><Key>$(head -c 1100 /dev/zero | tr '\0' k)</Key></Contents></ListBucketResult>"
seed "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>$(head -c 100 /dev/zero | tr '\0' t)</NextContinuationToken></ListBucketResult>"
seed '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>x</RequestId></Error>'
seed '<Error><Code>NoSuchKey</Code><BucketName>b</BucketName><RequestId>tx0000</RequestId></Error>'
seed '<Error><Code>AVeryLongErrorCodeThatDoesNotFit</Code></Error>'
seed '<Error><Code>Slow'
seed '[default]\naws_access_key_id = AKIA\naws_secret_access_key = s3cr3t\n\n[other]\naws_access_key_id=x\n'
seed '# comment\n[ default ]\n aws_access_key_id=k\naws_secret_access_key=\naws_session_token = t\n'
seed '[default\naws_access_key_id=k\n[default]\naws_secret_access_key=s'
seed '\0\0<\xff\xfe'
