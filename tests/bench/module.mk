# tests/bench/: programs that only `make bench` builds (never `make all`).
# The pprof codec benchmark links protobuf-c code that protoc-c generates
# from tests/bench/profile.proto into $(BUILD)/bench/gen (never committed).
PB_GEN      := $(BUILD)/bench/gen
PPROF_BENCH := $(BUILD)/bench/pprof_codec_bench
DEPFILES    += $(OBJ)/tests/bench/pprof_codec_bench.d $(OBJ)/bench/profile.pb-c.d

$(PB_GEN)/profile.pb-c.c $(PB_GEN)/profile.pb-c.h &: tests/bench/profile.proto
	@mkdir -p $(PB_GEN)
	protoc-c --proto_path=tests/bench --c_out=$(PB_GEN) $<

$(OBJ)/bench/profile.pb-c.o: $(PB_GEN)/profile.pb-c.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -I$(PB_GEN) -c $< -o $@

$(OBJ)/tests/bench/pprof_codec_bench.o: CFLAGS += -I$(PB_GEN)
$(OBJ)/tests/bench/pprof_codec_bench.o: $(PB_GEN)/profile.pb-c.h

$(PPROF_BENCH): $(OBJ)/tests/bench/pprof_codec_bench.o $(OBJ)/bench/profile.pb-c.o $(PPROF_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lprotobuf-c $(COMMON_LDLIBS)

# bench_pprof.sh builds it (after make bench installed protoc-c).
