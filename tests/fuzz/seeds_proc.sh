#!/usr/bin/env bash
# Seed corpus for fuzz_proc: this machine's own /proc text (maps, status,
# a slice of kallsyms) and hand-made odd lines.
# usage: seeds_proc.sh OUTDIR
set -e
out=$1
mkdir -p "$out"
cat /proc/self/maps >"$out/maps_self"
cat /proc/1/maps >"$out/maps_init" 2>/dev/null || true
cat /proc/self/status >"$out/status_self"
head -200 /proc/kallsyms >"$out/kallsyms_head" 2>/dev/null || true
i=0
seed() { printf '%b' "$1" >"$out/seed_$((i++))"; }
seed '7f0000000000-7f0000001000 r-xp 00000000 08:01 1234   /usr/lib/x.so (deleted)\n'
seed '7f0000001000-7f0000000000 r-xp 00000000 08:01 1234 /inverted\n'
seed 'ffffffffffffffffff-1 r-xp 0 0:0 0 /too-wide\n'
seed '1000-2000 r-x 0 0:0 0 /short-perms\n1000-2000 r-xp zz 0:0 0\n1000-2000 r-xp 0 00 0 /no-colon\n'
seed '1000-2000 r-xp 0 0:0 12x /bad-inode\n-\n1000-\n1000-2000\n'
seed '1000-2000 r-xp 00000000 00:00 0 \t [anon:name with spaces]\n'
seed 'Name:\tx\nNSpid:\t123\t45\t6\nTgid: 1\n'
seed 'NSpid:\nNSpid: 99999999999999\nNSpid: 12a\n'
# A line that ends inside its inode field, with no newline (found by libFuzzer).
seed '1000-2000 r-xp 0 0:0 12'
seed 'ffffffff81000000 T _text\nffffffff81000000 TT bad\n0 t\nzz T x [mod]\n'
