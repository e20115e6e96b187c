#!/usr/bin/env python3
"""make bench, unwind-compiler part.

For each object: CFI rows, our table bytes and bytes per row, beside what
the same rows would take in a Parca-style layout (14-byte self-contained
rows plus an end marker per FDE gap) and a 4-byte-per-delta layout (our
entries at 4 bytes each); then our compile time beside llvm-dwarfdump-14
--eh-frame on the same file, median of several runs in the same process of
this script.  Targets (DESIGN.md §6): libc <= 3.0 B/row, libc compiled in
<= 15 ms and faster than llvm-dwarfdump.  Then Debian's arm64 objects beside
llvm-dwarfdump-19 (aarch64 target: libc <= 3.0 B/row).
"""
import json
import os
import statistics
import subprocess
import sys
import time

BIN = os.path.join(os.environ.get("TOP", "."), os.environ.get("BUILD", "build"), "bin")
U = os.path.join(BIN, "unwind-compile")
LIB = "/usr/lib/x86_64-linux-gnu/"
OBJECTS = [LIB + "libc.so.6", LIB + "libstdc++.so.6", LIB + "libcrypto.so.3",
           os.path.realpath("/usr/bin/python3"), "/usr/bin/lua5.4", LIB + "libLLVM-14.so.1"]


def wall(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    objs = [o for o in OBJECTS if os.path.exists(o)]
    print("%-22s %9s %9s %6s %10s %9s %6s %9s %9s %7s" % (
        "object", "cfi_rows", "ours(B)", "B/row", "parca14(B)", "delta4(B)", "rules",
        "ours(ms)", "llvm(ms)", "ratio"))
    results = {}
    for o in objs:
        big = os.path.getsize(o) > 20 << 20
        runs = 3 if big else 11
        stats = [json.loads(subprocess.run([U, "--stats", o], capture_output=True, text=True,
                                           check=True).stdout) for _ in range(runs)]
        s = stats[0]
        compile_ms = statistics.median(x["compile_ms"] for x in stats)
        ours_wall = wall([U, "--stats", o], runs)
        llvm_wall = wall(["llvm-dwarfdump-14", "--eh-frame", o], 3 if big else 7)
        parca = (s["cfi_rows"] + s["fde_gaps"]) * 14
        delta4 = s["entries"] * 4
        name = os.path.basename(o)
        results[name] = (s, compile_ms, ours_wall, llvm_wall)
        print("%-22s %9d %9d %6.2f %10d %9d %6d %9.2f %9.1f %6.1fx" % (
            name, s["cfi_rows"], s["table_bytes"], s["bytes_per_row"], parca, delta4, s["rules"],
            compile_ms, llvm_wall, llvm_wall / ours_wall))
    print("(ours(ms): in-process compile time, median; ratio: llvm-dwarfdump wall time over our "
          "whole-process wall time, medians)")
    libc = results.get("libc.so.6")
    if libc:
        s, compile_ms, ours_wall, llvm_wall = libc
        verdict = lambda ok: "met" if ok else "MISSED"
        print("target libc bytes/row <= 3.0: %.3f (%d bytes) %s" % (
            s["bytes_per_row"], s["table_bytes"], verdict(s["bytes_per_row"] <= 3.0)))
        print("target libc compile <= 15 ms: %.2f ms %s" % (compile_ms, verdict(compile_ms <= 15)))
        print("target faster than llvm-dwarfdump --eh-frame: %.1f ms vs %.1f ms, %.1fx %s" % (
            ours_wall, llvm_wall, llvm_wall / ours_wall, verdict(ours_wall < llvm_wall)))
        print("vs Parca 14 B/row: %.1fx smaller; vs 4 B/delta: %.2fx smaller" % (
            (s["cfi_rows"] + s["fde_gaps"]) * 14 / s["table_bytes"], s["entries"] * 4 / s["table_bytes"]))
    aarch64()


def aarch64():
    """The same for Debian's arm64 objects (tests/lib/arm64_root.sh), beside
    llvm-dwarfdump-19, which reads aarch64 CFI without LLVM 14's defects."""
    top = os.environ.get("TOP", ".")
    r = subprocess.run([os.path.join(top, "tests/lib/arm64_root.sh")], capture_output=True, text=True)
    llvm = "llvm-dwarfdump-19"
    if r.returncode != 0 or subprocess.run(["which", llvm], capture_output=True).returncode != 0:
        print("aarch64: skipped (no Debian arm64 objects or no %s)" % llvm)
        return
    root = r.stdout.strip()
    objs = [root + "/lib/aarch64-linux-gnu/libc.so.6", root + "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            root + "/usr/bin/python3.11", root + "/usr/bin/lua5.4"]
    print()
    print("%-22s %9s %9s %6s %10s %6s %9s %9s %7s" % (
        "object (aarch64)", "cfi_rows", "ours(B)", "B/row", "parca14(B)", "rules",
        "ours(ms)", "llvm19(ms)", "ratio"))
    for o in objs:
        if not os.path.exists(o):
            continue
        stats = [json.loads(subprocess.run([U, "--stats", o], capture_output=True, text=True,
                                           check=True).stdout) for _ in range(11)]
        s = stats[0]
        compile_ms = statistics.median(x["compile_ms"] for x in stats)
        ours_wall = wall([U, "--stats", o], 11)
        llvm_wall = wall([llvm, "--eh-frame", o], 5)
        name = os.path.basename(o)
        print("%-22s %9d %9d %6.2f %10d %6d %9.2f %9.1f %6.1fx" % (
            name, s["cfi_rows"], s["table_bytes"], s["bytes_per_row"], (s["cfi_rows"] + s["fde_gaps"]) * 14,
            s["rules"], compile_ms, llvm_wall, llvm_wall / ours_wall))
        if name == "libc.so.6":
            libc = (s, compile_ms)
    s, compile_ms = libc
    print("target aarch64 libc bytes/row <= 3.0: %.3f (%d bytes) %s" % (
        s["bytes_per_row"], s["table_bytes"], "met" if s["bytes_per_row"] <= 3.0 else "MISSED"))
    print("aarch64 libc compile: %.2f ms" % compile_ms)


if __name__ == "__main__":
    sys.exit(main())
