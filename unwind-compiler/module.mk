# unwind-compiler/: library + unwind-compile.
UNWIND_LIB_SRCS := unwind-compiler/cfi.c unwind-compiler/compile.c unwind-compiler/table.c \
                   unwind-compiler/verify.c unwind-compiler/go_rows.c
UNWIND_LIB_OBJS := $(UNWIND_LIB_SRCS:%.c=$(OBJ)/%.o)
UNWIND_LIB      := $(LIB)/libunwindcompiler.a
UNWIND_LDLIBS   := -ldw $(COMMON_LDLIBS)
DEPFILES        += $(UNWIND_LIB_OBJS:.o=.d) $(OBJ)/unwind-compiler/main.d
BINS            += $(BIN)/unwind-compile

$(UNWIND_LIB): $(UNWIND_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(BIN)/unwind-compile: $(OBJ)/unwind-compiler/main.o $(UNWIND_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(UNWIND_LDLIBS)

# Fixtures: programs with known CFI shapes (tests/fixtures/unwind/).
UNWIND_FIX := $(BUILD)/fixtures/unwind
FIXTURES   += $(UNWIND_FIX)/deep-O2 $(UNWIND_FIX)/deep-O3 $(UNWIND_FIX)/deep-fp \
              $(UNWIND_FIX)/odd-cfi $(UNWIND_FIX)/overlap-cfi $(UNWIND_FIX)/debug-frame-only $(UNWIND_FIX)/deep-pie-now

$(UNWIND_FIX)/deep-O2: tests/fixtures/unwind/deep.c
	@mkdir -p $(@D)
	$(CC) -O2 -fomit-frame-pointer -g -o $@ $<
$(UNWIND_FIX)/deep-O3: tests/fixtures/unwind/deep.c
	@mkdir -p $(@D)
	$(CC) -O3 -fomit-frame-pointer -mstackrealign -o $@ $<
$(UNWIND_FIX)/deep-fp: tests/fixtures/unwind/deep.c
	@mkdir -p $(@D)
	$(CC) -O2 -fno-omit-frame-pointer -o $@ $<
$(UNWIND_FIX)/deep-pie-now: tests/fixtures/unwind/deep.c
	@mkdir -p $(@D)
	$(CC) -O2 -fomit-frame-pointer -fpie -pie -Wl,-z,now -fcf-protection=full -o $@ $<
$(UNWIND_FIX)/odd-cfi: tests/fixtures/unwind/odd_cfi.S tests/fixtures/unwind/main_asm.c
	@mkdir -p $(@D)
	$(CC) -O2 -o $@ $^
$(UNWIND_FIX)/overlap-cfi: tests/fixtures/unwind/overlap_cfi.S tests/fixtures/unwind/main_asm.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wl,--no-eh-frame-hdr -o $@ $^
# .debug_frame only: no unwind tables, CFI for the debugger.
$(UNWIND_FIX)/debug-frame-only: tests/fixtures/unwind/deep.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -fno-asynchronous-unwind-tables -fno-unwind-tables -nostartfiles -e main -o $@ $< 
