# symbolizer/: library + symbolize.
SYMZ_LIB_SRCS := symbolizer/index.c symbolizer/build.c symbolizer/debugfile.c \
                 symbolizer/profile_symbolize.c \
                 symbolizer/demangle.c symbolizer/jit.c symbolizer/json.c \
                 symbolizer/kallsyms.c symbolizer/minidebuginfo.c
SYMZ_LIB_OBJS := $(SYMZ_LIB_SRCS:%.c=$(OBJ)/%.o)
SYMZ_LIB      := $(LIB)/libsymbolizer.a
SYMZ_LDLIBS   := -ldw -liberty -llzma $(COMMON_LDLIBS)
SYMZ_CLI_SRCS := symbolizer/main.c symbolizer/cli.c symbolizer/fetch.c symbolizer/pprof.c
SYMZ_CLI_OBJS := $(SYMZ_CLI_SRCS:%.c=$(OBJ)/%.o)
DEPFILES      += $(SYMZ_LIB_OBJS:.o=.d) $(SYMZ_CLI_OBJS:.o=.d)
BINS          += $(BIN)/symbolize
TEST_LIBS_PRE += $(SYMZ_LIB)
TEST_LDLIBS   += -liberty -llzma

$(SYMZ_LIB): $(SYMZ_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(BIN)/symbolize: $(SYMZ_CLI_OBJS) $(SYMZ_LIB) $(PPROF_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(SYMZ_LDLIBS) -ldebuginfod

# Fixtures (tests/fixtures/symbolizer): inlined C and C++ at -O2/-O3, DWARF 4
# and 5, gcc and clang, split DWARF, zstd-compressed sections, a stripped
# binary with .gnu_debuglink, and a dwz pair with a supplementary file.
SYMZ_FX     := $(BUILD)/fixtures/symbolizer
SYMZ_FX_SRC := tests/fixtures/symbolizer
SYMZ_FIXTURES := $(SYMZ_FX)/c-O2-dw4 $(SYMZ_FX)/c-O3-dw5 $(SYMZ_FX)/cc-O2-dw5 \
                 $(SYMZ_FX)/cc-O3-dw4 $(SYMZ_FX)/c-clang-O2-dw5 $(SYMZ_FX)/cc-clang-O3-dw4 \
                 $(SYMZ_FX)/c-split $(SYMZ_FX)/c-O3-dw5.zstd $(SYMZ_FX)/c-stripped \
                 $(SYMZ_FX)/dwz1 $(SYMZ_FX)/jitwriter $(SYMZ_FX)/cc-O2-minidebuginfo \
                 $(SYMZ_FX)/fakevmlinux
FIXTURES    += $(SYMZ_FIXTURES)

$(SYMZ_FX)/c-O2-dw4: $(SYMZ_FX_SRC)/inl.c $(SYMZ_FX_SRC)/inl.h
	@mkdir -p $(@D)
	gcc -O2 -g -gdwarf-4 -o $@ $<
$(SYMZ_FX)/c-O3-dw5: $(SYMZ_FX_SRC)/inl.c $(SYMZ_FX_SRC)/inl.h
	@mkdir -p $(@D)
	gcc -O3 -g -gdwarf-5 -o $@ $<
$(SYMZ_FX)/cc-O2-dw5: $(SYMZ_FX_SRC)/inl.cc
	@mkdir -p $(@D)
	g++ -O2 -g -gdwarf-5 -o $@ $<
$(SYMZ_FX)/cc-O3-dw4: $(SYMZ_FX_SRC)/inl.cc
	@mkdir -p $(@D)
	g++ -O3 -g -gdwarf-4 -o $@ $<
$(SYMZ_FX)/c-clang-O2-dw5: $(SYMZ_FX_SRC)/inl.c $(SYMZ_FX_SRC)/inl.h
	@mkdir -p $(@D)
	clang-14 -O2 -g -gdwarf-5 -o $@ $<
$(SYMZ_FX)/cc-clang-O3-dw4: $(SYMZ_FX_SRC)/inl.cc
	@mkdir -p $(@D)
	clang++-14 -O3 -g -gdwarf-4 -o $@ $<
# Split DWARF: the .dwo lands next to the binary (absolute comp_dir).
$(SYMZ_FX)/c-split: $(SYMZ_FX_SRC)/inl.c $(SYMZ_FX_SRC)/inl.h
	@mkdir -p $(@D)
	cd $(@D) && gcc -O2 -g -gdwarf-5 -gsplit-dwarf -o c-split $(CURDIR)/$<
$(SYMZ_FX)/c-O3-dw5.zstd: $(SYMZ_FX)/c-O3-dw5
	objcopy --compress-debug-sections=zstd $< $@
# Stripped binary + separate debug file found through .gnu_debuglink.
$(SYMZ_FX)/c-stripped: $(SYMZ_FX)/c-O2-dw4
	objcopy --only-keep-debug $< $@.debug
	objcopy --strip-debug --strip-unneeded --add-gnu-debuglink=$@.debug $< $@
# dwz: two programs sharing DIEs through a supplementary file.
$(SYMZ_FX)/dwz1: $(SYMZ_FX_SRC)/dwz1.c $(SYMZ_FX_SRC)/dwz2.c $(SYMZ_FX_SRC)/inl.h
	@mkdir -p $(@D)/dwz
	gcc -O2 -g -gdwarf-4 -o $(@D)/dwz/dwz1 $(SYMZ_FX_SRC)/dwz1.c
	gcc -O2 -g -gdwarf-4 -o $(@D)/dwz/dwz2 $(SYMZ_FX_SRC)/dwz2.c
	cd $(@D)/dwz && dwz -m common.debug -M $(CURDIR)/$(@D)/dwz/common.debug dwz1 dwz2
	cp $(@D)/dwz/dwz1 $@
# MiniDebugInfo (.gnu_debugdata), made as Fedora makes it.
$(SYMZ_FX)/cc-O2-minidebuginfo: $(SYMZ_FX)/cc-O2-dw5 $(SYMZ_FX_SRC)/minidebuginfo.sh
	$(SYMZ_FX_SRC)/minidebuginfo.sh $< $@
# A stand-in for vmlinux: linked at the kernel's address, startup code first.
$(SYMZ_FX)/fakevmlinux: $(SYMZ_FX_SRC)/fakevmlinux.c
	@mkdir -p $(@D)
	gcc -O2 -g -fno-toplevel-reorder -fno-reorder-functions -ffreestanding -fno-pie -no-pie \
	    -mcmodel=kernel -nostdlib -static -Wl,--build-id -Wl,-Ttext=0xffffffff81000000 \
	    -Wl,-e,startup_64 -o $@ $<
# A small JIT writing a jitdump file (run by the tests).
$(SYMZ_FX)/jitwriter: $(SYMZ_FX_SRC)/jitwriter.c
	@mkdir -p $(@D)
	gcc -O1 -g -o $@ $<
