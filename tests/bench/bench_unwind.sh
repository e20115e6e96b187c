#!/usr/bin/env bash
# Unwind table size and compile time beside Parca/OTel layouts and llvm-dwarfdump.
exec python3 "$TOP/tests/bench/bench_unwind.py"
