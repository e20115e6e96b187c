#!/usr/bin/env bash
# Go symbolization from .gopclntab alone: 10k random PCs of the stripped Go
# fixture and of Debian's /usr/lib/go-1.19/bin/go (itself stripped, with a
# few cgo C functions) against `go tool addr2line` (>= 99.9% equal function
# and file:line), and the fixture's inline chains against llvm-symbolizer on
# the unstripped build of the same program (same code addresses).
. "$TOP/tests/lib/check.sh"
scratch
for t in go readelf llvm-symbolizer python3; do
	command -v $t >/dev/null || { skip go_names "$t not installed"; finish; }
done
export GOCACHE=$SCRATCH/gocache
FX=$FIXTURES/go
CHECK=$TOP/tests/symbolizer/go_names_check.py
[[ -x $FX/spin-stripped && -x $FX/spin ]] || { fail go_names "Go fixtures not built (make fixtures)"; finish; }

# at_least GOOD TOTAL PERMILLE
at_least() { [[ $2 -gt 0 && $(( $1 * 1000 )) -ge $(( $2 * $3 )) ]]; }

read total agree itotal iagree < <(python3 "$CHECK" "$BIN/symbolize" "$FX/spin-stripped" 10000 1 \
	"$FX/spin" 2>"$SCRATCH/fx.err")
echo "# stripped fixture: $agree of $total names agree with go tool addr2line;" \
	"$iagree of $itotal inline chains agree with llvm-symbolizer"
at_least ${agree:-0} ${total:-0} 999 && ok go_names_fixture_vs_go_addr2line ||
	fail go_names_fixture_vs_go_addr2line "$agree of $total: $(head -2 "$SCRATCH/fx.err" | tr '\n' ' ')"
at_least ${iagree:-0} ${itotal:-0} 999 && ok go_inline_chains_vs_llvm_symbolizer ||
	fail go_inline_chains_vs_llvm_symbolizer "$iagree of $itotal: $(head -2 "$SCRATCH/fx.err" | tr '\n' ' ')"

# The unstripped build has DWARF too: the more complete of the two is used
# (docs/go.md), and it must agree with go tool addr2line as well.
read total agree _ _ < <(python3 "$CHECK" "$BIN/symbolize" "$FX/spin" 10000 3 2>"$SCRATCH/un.err")
echo "# unstripped fixture: $agree of $total names agree with go tool addr2line"
at_least ${agree:-0} ${total:-0} 999 && ok go_names_unstripped_vs_go_addr2line ||
	fail go_names_unstripped_vs_go_addr2line "$agree of $total: $(head -2 "$SCRATCH/un.err" | tr '\n' ' ')"

# A PIE (go tool addr2line 1.19 cannot read one: inline chains only).
read _ _ itotal iagree < <(python3 "$CHECK" "$BIN/symbolize" "$FX/spin-pie-stripped" 5000 4 \
	"$FX/spin-pie" 2>"$SCRATCH/pie.err")
echo "# stripped PIE: $iagree of $itotal inline chains agree with llvm-symbolizer on the unstripped PIE"
at_least ${iagree:-0} ${itotal:-0} 999 && ok go_pie_inline_chains_vs_llvm_symbolizer ||
	fail go_pie_inline_chains_vs_llvm_symbolizer "$iagree of $itotal: $(grep inline "$SCRATCH/pie.err" | head -2 | tr '\n' ' ')"

DEBGO=/usr/lib/go-1.19/bin/go
if [[ -x $DEBGO ]]; then
	read total agree _ _ < <(python3 "$CHECK" "$BIN/symbolize" "$DEBGO" 10000 2 2>"$SCRATCH/go.err")
	echo "# $DEBGO: $agree of $total names agree with go tool addr2line"
	at_least ${agree:-0} ${total:-0} 999 && ok go_names_debian_go_vs_go_addr2line ||
		fail go_names_debian_go_vs_go_addr2line "$agree of $total: $(head -2 "$SCRATCH/go.err" | tr '\n' ' ')"
else
	skip go_names_debian_go_vs_go_addr2line "$DEBGO not installed (golang-1.19-go)"
fi
finish
