#!/usr/bin/env bash
# Regenerate the core-dump corpus of the replay test: ELF cores of real
# programs and of tests/fixtures/bpf/corepoints.c (deep recursion, a leaf,
# PLT calls, qsort callbacks, a signal handler; -O2 -fomit-frame-pointer),
# killed with SIGABRT at different moments (or calling abort() themselves).
#   aarch64: run under qemu-aarch64 (qemu-user) with Debian's arm64 glibc,
#            lua5.4 and python3.11 (tests/lib/arm64_root.sh);
#   x86-64:  native runs (the kernel writes the core: core_pattern "core").
# Writes OUT/{a64,x86}-NAME.core and OUT/manifest: "CORE EXE SYSROOT" lines.
#   tests/bpf/make_core_corpus.sh OUT [aarch64|x86-64|both]
set -uo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
WHICH=${2:-both}
mkdir -p "$OUT/bin" "$OUT/run"
: >"$OUT/manifest"
ulimit -c unlimited
SRC=$TOP/tests/fixtures/bpf/corepoints.c
LUA_SCRIPT=$TOP/tests/fixtures/bpf/cpu.lua
PY_SCRIPT='
import sys
sys.setrecursionlimit(10000)
def f(n):
    if n == 0:
        while True:
            sorted(range(300), key=lambda x: -x)
    return f(n - 1) + 1
f(60)
'

# run NAME KILL_AFTER_MS CMD...: start CMD in its own directory, SIGABRT it
# after the delay (unless it aborted by itself), keep its core.
run() {
	local name=$1 ms=$2; shift 2
	local dir=$OUT/run/$name
	rm -rf "$dir"; mkdir -p "$dir"
	( cd "$dir" && exec "$@" >/dev/null 2>&1 ) &
	local pid=$!
	sleep "$(printf '0.%03d' "$ms")"
	kill -ABRT "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	local core
	# qemu-user writes the guest's core as qemu_<prog>_<time>_<pid>.core
	# (and may then abort itself, leaving the host's "core" of qemu).
	core=$(ls "$dir"/qemu_*.core 2>/dev/null | head -1)
	[[ -n $core || $name == a64-* ]] || core=$(ls "$dir"/core* 2>/dev/null | head -1)
	if [[ -z $core ]]; then echo "make_core_corpus: $name left no core" >&2; return 1; fi
	mv "$core" "$OUT/$name.core"
	rm -rf "$dir"
}

if [[ $WHICH != x86-64 ]]; then
	ROOT=$("$TOP/tests/lib/arm64_root.sh") || exit 1
	LIBS=$ROOT/lib/aarch64-linux-gnu:$ROOT/usr/lib/aarch64-linux-gnu
	Q=(qemu-aarch64 -L "$ROOT" -E "LD_LIBRARY_PATH=$LIBS")
	# -no-pie: gdb-multiarch, the second oracle for signal frames, does
	# not relocate a PIE in qemu's cores (they carry no NT_FILE).
	aarch64-linux-gnu-gcc -O2 -g -fomit-frame-pointer -pthread -no-pie -Wl,--build-id \
		-o "$OUT/bin/corepoints-a64" "$SRC" || exit 1
	for ms in 150 230 310 390 470 550; do
		run "a64-corepoints-$ms" $((ms + 100)) "${Q[@]}" "$OUT/bin/corepoints-a64" "$ms" &&
			echo "$OUT/a64-corepoints-$ms.core $OUT/bin/corepoints-a64 $ROOT" >>"$OUT/manifest"
	done
	run a64-corepoints-abort 900 "${Q[@]}" "$OUT/bin/corepoints-a64" 200 abort &&
		echo "$OUT/a64-corepoints-abort.core $OUT/bin/corepoints-a64 $ROOT" >>"$OUT/manifest"
	for ms in 400 600 800; do
		run "a64-lua-$ms" "$ms" "${Q[@]}" "$ROOT/usr/bin/lua5.4" "$LUA_SCRIPT" &&
			echo "$OUT/a64-lua-$ms.core $ROOT/usr/bin/lua5.4 $ROOT" >>"$OUT/manifest"
	done
	for ms in 700 900; do
		run "a64-python-$ms" "$ms" "${Q[@]}" "$ROOT/usr/bin/python3.11" -S -E -c "$PY_SCRIPT" &&
			echo "$OUT/a64-python-$ms.core $ROOT/usr/bin/python3.11 $ROOT" >>"$OUT/manifest"
	done
fi
if [[ $WHICH != aarch64 ]]; then
	gcc -O2 -g -fomit-frame-pointer -pthread -Wl,--build-id -o "$OUT/bin/corepoints-x86" "$SRC" || exit 1
	for ms in 50 90 130 170 210 250; do
		run "x86-corepoints-$ms" $((ms + 40)) "$OUT/bin/corepoints-x86" "$ms" &&
			echo "$OUT/x86-corepoints-$ms.core $OUT/bin/corepoints-x86 -" >>"$OUT/manifest"
	done
	run x86-corepoints-abort 500 "$OUT/bin/corepoints-x86" 100 abort &&
		echo "$OUT/x86-corepoints-abort.core $OUT/bin/corepoints-x86 -" >>"$OUT/manifest"
	for ms in 150 250 350; do
		run "x86-lua-$ms" "$ms" lua5.4 "$LUA_SCRIPT" &&
			echo "$OUT/x86-lua-$ms.core $(command -v lua5.4) -" >>"$OUT/manifest"
	done
	for ms in 200 300; do
		run "x86-python-$ms" "$ms" python3.11 -S -E -c "$PY_SCRIPT" &&
			echo "$OUT/x86-python-$ms.core $(readlink -f "$(command -v python3.11)") -" >>"$OUT/manifest"
	done
fi
