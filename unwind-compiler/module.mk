# unwind-compiler/: library + unwind-compile.
UNWIND_LIB_SRCS := unwind-compiler/cfi.c unwind-compiler/compile.c unwind-compiler/table.c \
                   unwind-compiler/verify.c
UNWIND_LIB_OBJS := $(UNWIND_LIB_SRCS:%.c=$(OBJ)/%.o)
UNWIND_LIB      := $(LIB)/libunwindcompiler.a
UNWIND_LDLIBS   := -ldw $(COMMON_LDLIBS)
DEPFILES        += $(UNWIND_LIB_OBJS:.o=.d) $(OBJ)/unwind-compiler/main.d
BINS            += $(BIN)/unwind-compile

$(UNWIND_LIB): $(UNWIND_LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BIN)/unwind-compile: $(OBJ)/unwind-compiler/main.o $(UNWIND_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(UNWIND_LDLIBS)
