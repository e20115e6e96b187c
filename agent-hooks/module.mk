# agent-hooks/: the node-side library (libagenthooks.a) and profiler-agent.
# lifecycle.bpf.c (exec/fork/exit hooks) is compiled against the running
# kernel's BTF (bpf/module.mk generates vmlinux.h) into a skeleton.
AGENT_GEN      := $(BUILD)/agent-hooks
AGENT_LIB_SRCS := agent-hooks/tables.c agent-hooks/lifecycle.c agent-hooks/jit.c \
                  agent-hooks/profile_agg.c agent-hooks/ship.c agent-hooks/agent.c \
                  agent-hooks/kernel.c agent-hooks/jvm.c
AGENT_LIB_OBJS := $(AGENT_LIB_SRCS:%.c=$(OBJ)/%.o)
AGENT_LIB      := $(LIB)/libagenthooks.a
AGENT_LDLIBS   := -lcurl
DEPFILES       += $(AGENT_LIB_OBJS:.o=.d) $(OBJ)/agent-hooks/main.d
BINS           += $(BIN)/profiler-agent
TEST_LIBS_PRE  := $(AGENT_LIB) $(TEST_LIBS_PRE)
TEST_LDLIBS    += $(AGENT_LDLIBS)

$(AGENT_GEN)/lifecycle.bpf.o: agent-hooks/lifecycle.bpf.c agent-hooks/lifecycle.h \
		$(BPF_GEN)/vmlinux.h
	@mkdir -p $(@D)
	$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(BPF_GEN) -I. \
	    -Wall -Wno-unused-function -c $< -o $@

$(AGENT_GEN)/lifecycle.skel.h: $(AGENT_GEN)/lifecycle.bpf.o
	bpftool gen skeleton $< name lifecycle_skel > $@.tmp && mv $@.tmp $@

$(OBJ)/agent-hooks/lifecycle.o: CFLAGS += -I$(AGENT_GEN)
$(OBJ)/agent-hooks/lifecycle.o: $(AGENT_GEN)/lifecycle.skel.h

$(AGENT_LIB): $(AGENT_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

# The agent writes profiles through pprof/ and never links the symbolizer
# (symbolizing happens on the server or offline).
$(BIN)/profiler-agent: $(OBJ)/agent-hooks/main.o $(AGENT_LIB) $(BPF_LIB) $(PPROF_LIB) \
		$(UNWIND_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(AGENT_LDLIBS) $(BPF_LDLIBS) $(UNWIND_LDLIBS) $(COMMON_LDLIBS)

# The build check for that: no agent object and nothing in the program may
# name a symbolizer symbol (symz_*).  Part of `make all`.
AGENT_NO_SYMZ := $(BUILD)/agent-hooks/no-symbolizer.ok
all: $(AGENT_NO_SYMZ)
$(AGENT_NO_SYMZ): $(OBJ)/agent-hooks/main.o $(AGENT_LIB) $(BIN)/profiler-agent
	@mkdir -p $(@D)
	@if nm -A $^ 2>/dev/null | grep -E ' [A-Za-z] symz_'; then \
	    echo "agent-hooks: the agent references the symbolizer (symz_* above);" \
	         "it must use pprof/ only" >&2; exit 1; fi
	@touch $@

# Fixture: a CPU-bound program without frame pointers, stripped, with its
# unstripped twin (the oracle's debuginfo), plus a short-lived helper.
AGENT_FIX      := $(BUILD)/fixtures/agent-hooks
FIXTURES       += $(AGENT_FIX)/spin $(AGENT_FIX)/spin.debug $(AGENT_FIX)/blip \
                  $(AGENT_FIX)/sysbusy

$(AGENT_FIX)/spin.debug: tests/fixtures/agent-hooks/spin.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -fomit-frame-pointer -Wl,--build-id -o $@ $<
$(AGENT_FIX)/spin: $(AGENT_FIX)/spin.debug
	strip -o $@ $<
$(AGENT_FIX)/blip: tests/fixtures/agent-hooks/blip.c
	@mkdir -p $(@D)
	$(CC) -O2 -fomit-frame-pointer -Wl,--build-id -o $@ $<
$(AGENT_FIX)/sysbusy: tests/fixtures/agent-hooks/sysbusy.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wl,--build-id -o $@ $<
