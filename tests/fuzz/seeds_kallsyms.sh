#!/usr/bin/env bash
# Seed corpus for fuzz_kallsyms: normalized snapshots in both forms (the
# delta form profiler-agent writes, the text form older agents sent; a
# slice of this machine's, when readable), module lines, aliases and broken
# lines.
# usage: seeds_kallsyms.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
printf '0 T _text\n0 T _stext\n10 t helper\n40 W weak_fn\n1000 d data\n0 t mod_fn\t[mod]\n30 T mod_init\t[mod]\n' >"$out/small"
printf '0 T a\n\n20 t b [x]\nzz t broken\n' >"$out/broken"
printf 'ffffffffffffffff T last\n0 T first\n8 T first_alias\n8 t alias2\n' >"$out/edges"
awk 'NR <= 300 { printf "%x %s %s\n", NR * 16, $2, $3 }' /proc/kallsyms >"$out/machine" 2>/dev/null || true
printf 'kallsyms-delta 1\n0 T _text\n0 T _stext\n10 t helper\n30 W weak_fn\nfc0 d data\n[mod]\n0 t mod_fn\n30 T mod_init\n[x]\n8 t x_fn\n' >"$out/delta_small"
printf 'kallsyms-delta 1\nffffffffffffffff T last\n1 T wraps\n[\n[]\n[m\n0 T a\tb\n' >"$out/delta_broken"
awk 'NR == 1 { print "kallsyms-delta 1" } NR <= 300 { printf "%x %s %s\n", 16, $2, $3 }' /proc/kallsyms >"$out/delta_machine" 2>/dev/null || true
python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$out/small" "$out" 8
python3 "$TOP/tests/symbolizer/corrupt_bytes.py" "$out/delta_small" "$out" 8
