#!/usr/bin/env bash
# Go binaries (docs/go.md), on Debian's /usr/lib/go-1.19/bin/go (stripped:
# only .gopclntab): unwind-table compile time and size; symbolization
# throughput on 100k random PCs of its .text beside `go tool addr2line`
# (the Go toolchain's own reader, which gives no inline frames).  Median of 3.
set -u
: "${BUILD:=build}" "${TOP:=$(pwd)}"
GO=/usr/lib/go-1.19/bin/go
U=$TOP/$BUILD/bin/unwind-compile S=$TOP/$BUILD/bin/symbolize
[[ -x $GO ]] || { echo "skip bench_go: $GO not installed (golang-1.19-go)"; exit 0; }
command -v go >/dev/null || { echo "skip bench_go: go not installed"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export GOCACHE=$tmp/gocache
med() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
num() { sed 's/.*"'"$1"'":\([0-9.]*\).*/\1/'; }

# Table compile (in-process time from --stats) and size.
c=(); for i in 1 2 3; do c+=("$("$U" --stats "$GO" | num compile_ms)"); done
st=$("$U" --stats "$GO")
printf 'go table: %s functions, %s rows, %s entries, %s rules, %s bytes (%.2f B/row), compile %.2f ms (median of 3) for %s\n' \
	"$(echo "$st" | num fdes)" "$(echo "$st" | num cfi_rows)" "$(echo "$st" | num entries)" \
	"$(echo "$st" | num rules)" "$(echo "$st" | num table_bytes)" "$(echo "$st" | num bytes_per_row)" \
	"$(med "${c[@]}")" "$GO"

read lo size < <(readelf -SW "$GO" | awk '$2==".text" || $3==".text" {for (i=1;i<=NF;i++) if ($i=="PROGBITS") {print "0x"$(i+1), "0x"$(i+3); exit}}')
python3 -c 'import random,sys; lo,n=int(sys.argv[1],16),int(sys.argv[2],16); r=random.Random(7); print("\n".join("0x%x" % (lo+r.randrange(n)) for _ in range(100000)))' \
	"$lo" "$size" >"$tmp/addrs"
n=$(wc -l <"$tmp/addrs")
t() { local s e; s=$(date +%s.%N); "$@" <"$tmp/addrs" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
a2l=$(med $(t go tool addr2line "$GO") $(t go tool addr2line "$GO") $(t go tool addr2line "$GO"))
cold=$(med $(t "$S" --no-cache -e "$GO" --json --inlines) $(t "$S" --no-cache -e "$GO" --json --inlines) $(t "$S" --no-cache -e "$GO" --json --inlines))
"$S" index "$GO" -o "$tmp/go.symz"
warm=$(med $(t "$S" --index "$tmp/go.symz" --json --inlines) $(t "$S" --index "$tmp/go.symz" --json --inlines) $(t "$S" --index "$tmp/go.symz" --json --inlines))
rate() { echo "$n / $1" | bc; }
echo "addresses: $n random PCs of $GO's .text"
printf '%-36s %10s addr/s  (%.3f s)\n' "go tool addr2line (no inlines)" "$(rate $a2l)" "$a2l"
printf '%-36s %10s addr/s  (%.3f s)  %.1fx go tool addr2line\n' "symbolize warm (index built)" "$(rate $warm)" "$warm" "$(echo "$a2l / $warm" | bc -l)"
printf '%-36s %10s addr/s  (%.3f s)  %.1fx go tool addr2line\n' "symbolize cold (incl. index build)" "$(rate $cold)" "$cold" "$(echo "$a2l / $cold" | bc -l)"
pcln=$(readelf -SW "$GO" | awk '$2==".gopclntab" || $3==".gopclntab" {for (i=1;i<=NF;i++) if ($i=="PROGBITS") {print $(i+3); exit}}')
printf 'index %d bytes vs .gopclntab %d bytes\n' "$(stat -c %s "$tmp/go.symz")" "$((16#$pcln))"
