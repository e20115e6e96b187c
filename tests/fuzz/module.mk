# Fuzz targets: tests/fuzz/fuzz_<name>.c.  The suite links each with
# replay.c into $(BUILD)/fuzz/replay_<name> and runs a seed corpus through
# it; `make fuzz FUZZ=<name> SECONDS=60` runs libFuzzer for real.
FUZZ_SRCS     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAYS  := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/replay_%)
TEST_BINS     += $(FUZZ_REPLAYS)
DEPFILES      += $(FUZZ_SRCS:%.c=$(OBJ)/%.d) $(OBJ)/tests/fuzz/replay.d

$(BUILD)/fuzz/replay_%: $(OBJ)/tests/fuzz/fuzz_%.o $(OBJ)/tests/fuzz/replay.o $(TEST_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(OBJ)/tests/fuzz/fuzz_$*.o $(OBJ)/tests/fuzz/replay.o \
	    -Wl,--start-group $(TEST_LIBS) -Wl,--end-group $(TEST_LDLIBS)

FUZZ    ?= unwind
SECONDS ?= 60
FUZZ_DIR := build-fuzz
fuzz: $(FIXTURES)
	$(MAKE) BUILD=$(FUZZ_DIR) CC=$(CLANG) \
	    SANFLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer" \
	    $(TEST_LIBS:$(BUILD)/%=$(FUZZ_DIR)/%) $(FUZZ_DIR)/obj/tests/fuzz/fuzz_$(FUZZ).o
	$(CLANG) -fsanitize=address,undefined,fuzzer -o $(FUZZ_DIR)/fuzz_$(FUZZ) \
	    $(FUZZ_DIR)/obj/tests/fuzz/fuzz_$(FUZZ).o -Wl,--start-group $(FUZZ_DIR)/lib/*.a -Wl,--end-group $(TEST_LDLIBS)
	mkdir -p $(FUZZ_DIR)/corpus_$(FUZZ)
	TOP=$(CURDIR) FIXTURES=$(CURDIR)/$(BUILD)/fixtures tests/fuzz/seeds_$(FUZZ).sh $(FUZZ_DIR)/seeds_$(FUZZ)
	$(FUZZ_DIR)/fuzz_$(FUZZ) -max_total_time=$(SECONDS) -rss_limit_mb=4096 \
	    $(FUZZ_DIR)/corpus_$(FUZZ) $(FUZZ_DIR)/seeds_$(FUZZ)
