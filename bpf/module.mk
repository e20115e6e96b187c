# bpf/: the perf_event sampler (BPF object + skeleton), the loader library
# (mappings -> build-IDs -> tables -> maps), the user-space walker, and
# unwind-sample.  vmlinux.h is generated from the running kernel's BTF into
# $(BUILD)/bpf: never committed.
BPF_GEN        := $(BUILD)/bpf
BPF_CLANG      ?= clang
# The architecture the BPF object walks (x86 or arm64; arm64 needs an arm64
# vmlinux.h in $(BPF_GEN), see tests/bpf/arm64_vmlinux.sh).
BPF_TARGET_ARCH ?= x86
BPF_LIB_SRCS   := bpf/loader.c bpf/walker_user.c bpf/sampler_bpf.c bpf/features.c bpf/core.c
BPF_LIB_OBJS   := $(BPF_LIB_SRCS:%.c=$(OBJ)/%.o)
BPF_LIB        := $(LIB)/libsampler.a
BPF_LDLIBS     := -lbpf -ldw
DEPFILES       += $(BPF_LIB_OBJS:.o=.d) $(OBJ)/bpf/main.d
BINS           += $(BIN)/unwind-sample
TEST_LIBS_PRE  += $(BPF_LIB)
TEST_LDLIBS    += $(BPF_LDLIBS)

$(BPF_GEN)/vmlinux.h:
	@mkdir -p $(@D)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BPF_GEN)/sampler.bpf.o: bpf/sampler.bpf.c bpf/walker.c bpf/walker_arm64.c bpf/sampler.h \
		unwind-compiler/unwind_table.h $(BPF_GEN)/vmlinux.h
	$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_TARGET_ARCH) -I$(BPF_GEN) -I. \
	    -Wall -Wno-unused-function -c $< -o $@

$(BPF_GEN)/sampler.skel.h: $(BPF_GEN)/sampler.bpf.o
	bpftool gen skeleton $< name sampler_skel > $@.tmp && mv $@.tmp $@

$(OBJ)/bpf/sampler_bpf.o: CFLAGS += -I$(BPF_GEN)
$(OBJ)/bpf/sampler_bpf.o: $(BPF_GEN)/sampler.skel.h

$(BPF_LIB): $(BPF_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

# --symbolize names frames through the symbolizer library (the sampler
# library itself does not depend on it).
$(BIN)/unwind-sample: $(OBJ)/bpf/main.o $(BPF_LIB) $(SYMZ_LIB) $(UNWIND_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(BPF_LDLIBS) $(SYMZ_LDLIBS) $(UNWIND_LDLIBS)

# Fixtures: a deep-stack program without frame pointers (and its frame-
# pointer twin) linked to a shared library, all -O2.
BPF_FIX        := $(BUILD)/fixtures/bpf
BPF_FIX_CFLAGS := -O2 -g -fomit-frame-pointer -Wno-unused-parameter
FIXTURES       += $(BPF_FIX)/deep $(BPF_FIX)/deep-fp $(BPF_FIX)/libdeepfix.so \
                  $(BPF_FIX)/deep-stripped

$(BPF_FIX)/libdeepfix.so: tests/fixtures/bpf/deep_lib.c tests/fixtures/bpf/deep.h
	@mkdir -p $(@D)
	$(CC) $(BPF_FIX_CFLAGS) -fPIC -shared -Wl,--build-id -o $@ $<

$(BPF_FIX)/deep: tests/fixtures/bpf/deep.c tests/fixtures/bpf/deep.h $(BPF_FIX)/libdeepfix.so
	$(CC) $(BPF_FIX_CFLAGS) -Wl,--build-id -o $@ $< -L$(BPF_FIX) -ldeepfix -Wl,-rpath,'$$ORIGIN'

$(BPF_FIX)/deep-fp: tests/fixtures/bpf/deep.c tests/fixtures/bpf/deep.h $(BPF_FIX)/libdeepfix.so
	$(CC) -O2 -g -fno-omit-frame-pointer -Wl,--build-id -o $@ $< -L$(BPF_FIX) -ldeepfix \
	    -Wl,-rpath,'$$ORIGIN'


# The VM matrix (tests/vm/) samples the stripped copy: tables from .eh_frame
# only; the symbols stay in deep (same build-ID) for the oracle.
$(BPF_FIX)/deep-stripped: $(BPF_FIX)/deep
	strip -o $@ $<
