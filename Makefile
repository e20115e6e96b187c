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

.PHONY: all deps test test-fast bench run demo clean install fixtures fuzz
all:

# --- Debian packages the project needs (build, tests, oracles, benchmarks) ---
DEB_PACKAGES := build-essential pkg-config clang llvm libclang-rt-14-dev \
    libelf-dev libdw-dev elfutils libdebuginfod-dev debuginfod \
    libmicrohttpd-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev curl \
    libbpf-dev bpftool linux-perf zlib1g-dev libzstd-dev zstd libjansson-dev \
    libiberty-dev binutils dwz golang-go golang-github-google-pprof-dev \
    binutils-x86-64-linux-gnu binutils-x86-64-linux-gnu-dbg libbinutils-dbg nodejs \
    python3 gdb libc6-dbg libssl-dev libstdc++6 lua5.4 python3.11 wrk
# protobuf-c serves only the pprof codec benchmark (tests/bench/bench_pprof.sh):
# the reference our hand-written codec is measured against.  Nothing else uses it.
DEB_PACKAGES += libprotobuf-c-dev protobuf-c-compiler

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "deps: missing packages; run as root: apt-get install -y $$missing" >&2; exit 1; fi; \
	echo "deps: installing $$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing

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
test: all $(FIXTURES)
	@BUILD=$(BUILD) tests/run

bench: all $(FIXTURES)
	@BUILD=$(BUILD) tests/bench/run

run: all
	@mkdir -p var
	$(BIN)/debuginfod-lite --data var --listen 127.0.0.1:8002 \
	    --scan /usr/lib/debug --scan /usr/lib/x86_64-linux-gnu --scan /usr/bin

# The whole loop end to end: server, upload, agent with BPF, symbolized
# top functions and flame graphs in demo-out/ (needs root and BTF).
demo: all $(FIXTURES)
	@BUILD=$(BUILD) contrib/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-san build-fuzz demo-out

-include $(DEPFILES)
