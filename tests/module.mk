# tests/: C test programs are built from tests/<component>/test_*.c into
# $(BUILD)/tests/<component>/.  Components add their libraries to
# TEST_LIBS_PRE and their link flags to TEST_LDLIBS, and add fixtures to
# FIXTURES.
TEST_SRCS   := $(wildcard tests/*/test_*.c)
TEST_BINS   += $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
DEPFILES    += $(TEST_SRCS:%.c=$(OBJ)/%.d)
TEST_LIBS   := $(TEST_LIBS_PRE) $(UNWIND_LIB) $(COMMON_LIB)
TEST_LDLIBS += $(UNWIND_LDLIBS)

$(BUILD)/tests/%: $(OBJ)/tests/%.o $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(TEST_LIBS) -Wl,--end-group $(TEST_LDLIBS)
# pprof/'s own test links pprof/ and common/ alone: proof that pprof/ needs
# nothing above it (docs/architecture.md).
$(BUILD)/tests/pprof/test_pprof: $(OBJ)/tests/pprof/test_pprof.o $(PPROF_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(COMMON_LDLIBS)

include tests/fixtures/go/module.mk
include tests/fuzz/module.mk
include tests/bench/module.mk

# The S3 client's command-line front for the test scripts (not a test itself).
TEST_BINS += $(BUILD)/tests/debuginfod-lite/s3_tool
DEPFILES  += $(OBJ)/tests/debuginfod-lite/s3_tool.d
$(BUILD)/tests/debuginfod-lite/s3_tool: $(OBJ)/tests/debuginfod-lite/s3_tool.o $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(TEST_LIBS) -Wl,--end-group $(TEST_LDLIBS)
