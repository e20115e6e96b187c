#!/usr/bin/env bash
# Demangling of real symbols against independent demanglers:
#   Rust legacy and v0: symbols of programs built by Debian's rustc (its own
#     crate mangled both ways, plus the legacy-mangled std it links), against
#     rustc-demangle itself (npm gecko-profiler-demangle, installed by
#     `make deps-test` when npm is there) and, for v0, llvm-cxxfilt;
#   C++: libstdc++'s exported symbols against llvm-cxxfilt (compared without
#     whitespace: LLVM writes "<int>>" where libiberty writes "<int> >").
. "$TOP/tests/lib/check.sh"
scratch
D=$TOP/$BUILD/tests/symbolizer/test_demangle
ORACLE_PKG=$TOP/build/tools/npm/node_modules/gecko-profiler-demangle
CXXFILT=$(command -v llvm-cxxfilt-19 || command -v llvm-cxxfilt-14 || command -v llvm-cxxfilt)
RUSTC=/usr/bin/rustc # Debian's, whatever else is on PATH
# compare NAME MANGLED_FILE ORACLE_OUT [nows]: ours against the oracle's lines.
compare() {
	local name=$1 in=$2 want=$3 mode=${4:-}
	"$D" --stdin <"$in" >"$SCRATCH/$name.ours"
	r=$(python3 - "$in" "$SCRATCH/$name.ours" "$want" "$mode" <<'PY'
import json, re, sys
names, ours, want = (open(f).read().splitlines() for f in sys.argv[1:4])
# LLVM shows a ".llvm.N" suffix as " (.llvm.N)"; rustc-demangle and we drop it.
want = [re.sub(r' \(\.llvm\.\d+\)$', '', w) for w in want]
norm = (lambda s: ''.join(s.split())) if sys.argv[4] == 'nows' else (lambda s: s)
# Names the oracle leaves as they are (it does not know GCC's "_ZGTt"
# transaction clones, or an LLVM ".llvm.N" suffix on a v0 name) are not
# compared: counted apart.
rows = [(n, o, w) for n, o, w in zip(names, ours, want) if w != n]
bad = [(n, o, w) for n, o, w in rows if norm(o) != norm(w)]
names = [n for n, _, _ in rows]
print(json.dumps({'names': len(names), 'same': len(names) - len(bad),
                  'oracle_left_alone': len(want) - len(rows), 'examples': bad[:3]}))
PY
)
	echo "# $name: $r"
	python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["names"] >= 10 and r["same"] >= 0.999 * r["names"]))' "$r" &&
		ok "$name" || fail "$name" "$r"
}
if [[ -x $RUSTC ]]; then
	cat >"$SCRATCH/r.rs" <<'RS'
use std::collections::HashMap;
pub mod examples {
    pub trait Shape { fn area(&self) -> f64; }
    pub struct Sq<T>(pub T);
    impl Shape for Sq<f64> { fn area(&self) -> f64 { self.0 * self.0 } }
    #[inline(never)] pub fn total<S: Shape>(v: &[S]) -> f64 { v.iter().map(|s| s.area()).sum() }
}
fn main() {
    let mut m: HashMap<String, Vec<u32>> = HashMap::new();
    m.entry("a".into()).or_default().push(1);
    let v = vec![examples::Sq(1.5f64), examples::Sq(2.0)];
    let f = |x: f64| x * 2.0;
    println!("{} {} {}", examples::total(&v), m.len(), f(1.0));
}
RS
	"$RUSTC" -O -o "$SCRATCH/r-legacy" "$SCRATCH/r.rs" 2>"$SCRATCH/rustc.err" &&
		"$RUSTC" -O -C symbol-mangling-version=v0 -o "$SCRATCH/r-v0" "$SCRATCH/r.rs" 2>>"$SCRATCH/rustc.err" ||
		fail rustc_builds "$(head -3 "$SCRATCH/rustc.err")"
	nm "$SCRATCH/r-legacy" | awk '{ print $NF }' | grep '^_ZN.*17h[0-9a-f]\{16\}E$' | sort -u >"$SCRATCH/legacy.txt"
	nm "$SCRATCH/r-v0" | awk '{ print $NF }' | grep '^_R' | sort -u >"$SCRATCH/v0.txt"
	if [[ -f $ORACLE_PKG/index_bg.wasm ]] && command -v node >/dev/null; then
		node "$TOP/tests/symbolizer/demangle_oracle.mjs" "$ORACLE_PKG" <"$SCRATCH/legacy.txt" >"$SCRATCH/legacy.want"
		compare rust_legacy_as_rustc_demangle "$SCRATCH/legacy.txt" "$SCRATCH/legacy.want"
		node "$TOP/tests/symbolizer/demangle_oracle.mjs" "$ORACLE_PKG" <"$SCRATCH/v0.txt" >"$SCRATCH/v0.want"
		compare rust_v0_as_rustc_demangle "$SCRATCH/v0.txt" "$SCRATCH/v0.want"
	else
		skip rust_legacy_as_rustc_demangle "npm's gecko-profiler-demangle is not installed (make deps-test with npm)"
		skip rust_v0_as_rustc_demangle "npm's gecko-profiler-demangle is not installed (make deps-test with npm)"
	fi
	if [[ -n $CXXFILT ]]; then
		"$CXXFILT" <"$SCRATCH/v0.txt" >"$SCRATCH/v0.llvm"
		compare rust_v0_as_llvm_cxxfilt "$SCRATCH/v0.txt" "$SCRATCH/v0.llvm"
	else
		skip rust_v0_as_llvm_cxxfilt "llvm-cxxfilt is not installed"
	fi
else
	for n in rust_legacy_as_rustc_demangle rust_v0_as_rustc_demangle rust_v0_as_llvm_cxxfilt; do
		skip $n "Debian's rustc is not installed"
	done
fi
if [[ -n $CXXFILT ]]; then
	LIBSTDCXX=$(readlink -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6)
	nm -D --defined-only "$LIBSTDCXX" | awk '{ print $NF }' | sed 's/@.*//' | grep '^_Z' | sort -u >"$SCRATCH/cxx.txt"
	"$CXXFILT" <"$SCRATCH/cxx.txt" >"$SCRATCH/cxx.want"
	compare cxx_as_llvm_cxxfilt "$SCRATCH/cxx.txt" "$SCRATCH/cxx.want" nows
else
	skip cxx_as_llvm_cxxfilt "llvm-cxxfilt is not installed"
fi
finish
