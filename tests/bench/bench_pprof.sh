#!/usr/bin/env bash
# pprof codec: ours (pprof/) beside protobuf-c code generated
# from tests/bench/profile.proto, on the same bytes: decode, merge of 4
# profiles, encode (tests/bench/pprof_codec_bench.c says how the profiles
# are built and what each phase does).  Medians of RUNS runs; SAMPLES
# samples per profile.  The verdict counts the codec's own work: decode +
# merge + encode on plain bytes (the gzip rows add the same zlib to both).
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}" "${BUILD:=build}"
command -v protoc-c >/dev/null || { echo "bench_pprof: protoc-c not installed (make deps-test)"; exit 1; }
make -s -C "$TOP" BUILD="$BUILD" "$BUILD/bench/pprof_codec_bench" || exit 1
out=$("$TOP/$BUILD/bench/pprof_codec_bench" "${SAMPLES:-200000}" "${RUNS:-5}")
status=$?
awk -v runs="${RUNS:-5}" '
function mib(kb) { return kb < 0 ? "n/a" : sprintf("%.1f", kb / 1024) }
$1 == "info" { info[$2] = $0; sub(/^info [^ ]+ /, "", info[$2]) }
$1 == "size" { size[$2] = $3; size2[$2] = $4 }
$1 == "check" { checks++; if ($3 != "ok") { failed++; print "FAILED check: " $0 } }
$1 == "phase" {
	row[++n] = sprintf("%-10s %10.1f %16.1f %8.2f %12s %12s", $2, $3, $4, ($4 > 0 ? $3 / $4 : 0),
			   mib($5), mib($6))
	if ($2 !~ /\.gz$/) { ours += $3; pbc += $4 }
}
END {
	printf "input: 4 profiles (the first: %s); merged: %s\n", info["input0"], info["merged"]
	printf "sizes: one input %.1f MB plain, %.1f MB gzipped; merged %.1f MB plain (protobuf-c %.1f MB), %.1f MB gzipped (protobuf-c %.1f MB)\n",
	       size["input0.plain"] / 1e6, size["input0.gz"] / 1e6, size["merged.plain"] / 1e6,
	       size2["merged.plain"] / 1e6, size["merged.gz"] / 1e6, size2["merged.gz"] / 1e6
	printf "%-10s %10s %16s %8s %12s %12s\n", "phase", "ours (ms)", "protobuf-c (ms)", "ratio", "ours (MiB)", "p-c (MiB)"
	for (i = 1; i <= n; i++) print row[i]
	printf "%-10s %10.1f %16.1f %8.2f\n", "total", ours, pbc, (pbc > 0 ? ours / pbc : 0)
	printf "(median of %s runs; ratio = ours / protobuf-c; MiB = peak RSS growth during the phase; total = the plain rows)\n", runs
	if (failed || !checks || !n) {
		printf "verdict: none, %d of %d equivalence checks failed\n", failed, checks
		exit 1
	}
	printf "checks: %d ok (same samples, totals and stacks from both merges; each codec reads the other'\''s output)\n", checks
	if (ours <= pbc)
		printf "verdict: keep ours: decode+merge+encode take %.0f ms against %.0f ms with protobuf-c (ours not slower)\n", ours, pbc
	else
		printf "verdict: switch to protobuf-c: decode+merge+encode take %.0f ms with ours against %.0f ms (ours %.0f%% slower)\n", ours, pbc, (ours / pbc - 1) * 100
}' <<<"$out" || exit 1
exit $status
