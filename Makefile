# One entry point: deps, all, test, bench, run, clean, install.
# Each component adds its own rules in <component>/module.mk; this file only
# holds what they share.

SHELL       := /bin/bash
BUILD       ?= build
PREFIX      ?= /usr/local
DESTDIR     ?=
CC          ?= cc
CLANG       ?= clang

# SAN=1 builds everything with AddressSanitizer + UndefinedBehaviorSanitizer
# into build-san/ (CI runs the suite once that way).
ifeq ($(SAN),1)
BUILD       := build-san
SANFLAGS    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

WARN        := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(CI),true)
WARN        += -Werror
endif
CFLAGS      ?= -O2 -g
CFLAGS      += -std=gnu11 $(WARN) -pthread -D_GNU_SOURCE $(SANFLAGS) -I. -MMD -MP
LDFLAGS     += -pthread $(SANFLAGS)

BIN         := $(BUILD)/bin
OBJ         := $(BUILD)/obj
LIB         := $(BUILD)/lib

# Filled in by the module.mk files.
BINS        :=
TEST_BINS   :=
FIXTURES    :=
DEPFILES    :=

# Keep intermediate objects: no "rm …" after the suite's closing line.
.SECONDARY:

.PHONY: all deps deps-test deps-cluster test test-fast bench run cluster demo clean install fixtures fuzz \
	test-arm64-vm
all:

# --- Debian packages ---
# Building and running the programs (make deps; all that make run needs).
DEB_BUILD := build-essential pkg-config clang libelf-dev libdw-dev libdebuginfod-dev \
    libmicrohttpd-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev libbpf-dev bpftool \
    zlib1g-dev libzstd-dev libjansson-dev libiberty-dev libssl-dev libexpat1-dev liblzma-dev
# Only the tests, fixtures and benchmarks: oracles, debug packages, runtimes
# (make deps-test, which make test, make bench and make demo run first).
DEB_TEST := llvm llvm-19 qemu-user gcc-aarch64-linux-gnu libclang-rt-14-dev elfutils debuginfod sqlite3 curl linux-perf zstd \
    binutils dwz golang-go golang-github-google-pprof-dev \
    binutils-x86-64-linux-gnu binutils-x86-64-linux-gnu-dbg libbinutils-dbg nodejs \
    python3 gdb libc6-dbg libstdc++6 lua5.4 python3.11 wrk nginx-light \
    openjdk-17-jdk-headless rustc xz-utils postgresql-15
# protobuf-c serves only the pprof codec benchmark (tests/bench/bench_pprof.sh):
# the reference our hand-written codec is measured against.  Nothing else uses it.
DEB_TEST += libprotobuf-c-dev protobuf-c-compiler
# The example cluster (make cluster) and its tests and benchmarks
# (tests/cluster/): Ceph's RADOS Gateway (mon, memstore OSD, radosgw),
# PostgreSQL 15, nginx; time(1) for peak-RSS checks of streamed transfers.
DEB_CLUSTER := ceph-mon ceph-osd radosgw ceph-common postgresql-15 nginx-light
DEB_TEST += $(DEB_CLUSTER) time
# The VM harness (tests/vm/): Debian kernels booted under qemu from a busybox
# initramfs.
DEB_TEST += qemu-system-x86 busybox-static cpio
# The live arm64 run (make test-arm64-vm).
DEB_TEST += qemu-system-arm

# $(call install_debs,WHAT,PACKAGES): install the missing ones (as root), or
# say which are missing.
define install_debs
	@missing=$$(for p in $(2); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "$(1): all packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "$(1): missing packages; run as root: apt-get install -y $$missing" >&2; exit 1; fi; \
	echo "$(1): installing $$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing
endef

deps:
	$(call install_debs,deps,$(DEB_BUILD))

# npm packages only the tests use, under build/tools/npm (never in the git
# tree): rustc-demangle, built to WebAssembly, as the Rust demangling oracle
# (tests/symbolizer/test_demangle.sh; skipped where npm is missing).
NPM_TEST := gecko-profiler-demangle@0.4.0

deps-test: deps
	$(call install_debs,deps-test,$(DEB_TEST))
	@if [ -d build/tools/npm/node_modules/gecko-profiler-demangle ]; then :; \
	elif command -v npm >/dev/null; then mkdir -p build/tools/npm && \
	    npm install --prefix build/tools/npm --no-audit --no-fund $(NPM_TEST) >/dev/null || \
	    echo "deps-test: npm install $(NPM_TEST) failed; its tests will skip" >&2; \
	else echo "deps-test: no npm; the tests that use $(NPM_TEST) will skip" >&2; fi

deps-cluster: deps
	$(call install_debs,deps-cluster,$(DEB_CLUSTER))

# --- shared compile rule ---
$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# Components, lowest first (the libraries others link); every other <component>/module.mk is picked up
# on its own, and tests/ comes last (it links what the others define).
include common/module.mk
include pprof/module.mk
include unwind-compiler/module.mk
include symbolizer/module.mk
include bpf/module.mk
include $(sort $(filter-out common/module.mk pprof/module.mk unwind-compiler/module.mk \
                            symbolizer/module.mk bpf/module.mk tests/module.mk,$(wildcard */module.mk)))
include tests/module.mk

all: $(BINS) $(TEST_BINS)

fixtures: $(FIXTURES)

# The suite: every test program and script under tests/, one summary line.
# The test packages come first: the fixtures are built with some of them.
test: deps-test
	@$(MAKE) --no-print-directory all fixtures
	@BUILD=$(BUILD) tests/run

bench: deps-test
	@$(MAKE) --no-print-directory all fixtures
	@BUILD=$(BUILD) tests/bench/run

# The live arm64 run alone: Debian's arm64 kernel under qemu-system-aarch64
# with a static arm64 unwind-sample (tests/vm/test_arm64_vm.sh; make test
# runs it too).
test-arm64-vm: deps-test
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/run test_arm64_vm

run: all
	@mkdir -p var
	$(BIN)/debuginfod-lite --data var --listen 127.0.0.1:8002 \
	    --scan /usr/lib/debug --scan /usr/lib/x86_64-linux-gnu --scan /usr/bin

# Two replicas over PostgreSQL and Ceph RGW behind nginx on 127.0.0.1:8003,
# until Ctrl-C (docs/cluster.md).
cluster: deps-cluster
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) contrib/cluster.sh

# The whole loop end to end: server, upload, agent with BPF, symbolized
# top functions and flame graphs in demo-out/ (needs root and BTF).
demo: deps-test
	@$(MAKE) --no-print-directory all fixtures
	@BUILD=$(BUILD) contrib/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-san build-fuzz demo-out

-include $(DEPFILES)
