# debuginfod-lite/: the server library + debuginfod-lite + debuginfod-upload.
# libpq's header lives in its own directory.
$(OBJ)/debuginfod-lite/db_postgres.o: CFLAGS += -I/usr/include/postgresql
DIL_LIB_SRCS := debuginfod-lite/metadb.c debuginfod-lite/db_sqlite.c debuginfod-lite/db_postgres.c \
                debuginfod-lite/blobs.c debuginfod-lite/blob_file.c \
                debuginfod-lite/store.c debuginfod-lite/artifact.c \
                debuginfod-lite/scan.c debuginfod-lite/log.c debuginfod-lite/sources.c \
                debuginfod-lite/server.c debuginfod-lite/body_cache.c debuginfod-lite/handlers_buildid.c debuginfod-lite/core.c \
                debuginfod-lite/upload_handler.c debuginfod-lite/upstream.c \
                debuginfod-lite/metrics.c debuginfod-lite/parse.c \
                debuginfod-lite/symbolize.c debuginfod-lite/symbolize_http.c debuginfod-lite/metadata.c \
                debuginfod-lite/encoding.c debuginfod-lite/watch.c \
                debuginfod-lite/deadline.c debuginfod-lite/profiles.c \
                debuginfod-lite/profiles_http.c debuginfod-lite/profiles_ingest.c debuginfod-lite/profiles_merge.c debuginfod-lite/symbolz.c \
                debuginfod-lite/ratelimit.c debuginfod-lite/edge.c debuginfod-lite/budget.c \
                debuginfod-lite/migrate.c debuginfod-lite/config.c \
                debuginfod-lite/s3.c debuginfod-lite/blob_s3.c
DIL_LIB_OBJS := $(DIL_LIB_SRCS:%.c=$(OBJ)/%.o)
DIL_LIB      := $(LIB)/libdebuginfodlite.a
DIL_LDLIBS   := -lmicrohttpd -lsqlite3 -lpq -lcurl -lexpat -ljansson -ldw -liberty -llzma $(UNWIND_LDLIBS)
DEPFILES     += $(DIL_LIB_OBJS:.o=.d) $(OBJ)/debuginfod-lite/main.d \
                $(OBJ)/debuginfod-lite/upload_main.d
BINS         += $(BIN)/debuginfod-lite $(BIN)/debuginfod-upload
TEST_LIBS_PRE += $(DIL_LIB)
TEST_LDLIBS  += -lmicrohttpd -lsqlite3 -lpq -lcurl -lexpat -ljansson

$(DIL_LIB): $(DIL_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(BIN)/debuginfod-lite: $(OBJ)/debuginfod-lite/main.o $(DIL_LIB) $(SYMZ_LIB) $(PPROF_LIB) $(UNWIND_LIB) \
		$(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIL_LDLIBS)

$(BIN)/debuginfod-upload: $(OBJ)/debuginfod-lite/upload_main.o $(DIL_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lcurl -ldw $(COMMON_LDLIBS)

# The layering rule (docs/architecture.md "Layers"): the debuginfo core,
# the profile store and the storage under them never see the HTTP layer:
# none of their sources includes server.h, server_internal.h or microhttpd.h, or
# names struct server or struct request.  Part of `make all`.
DIL_CORE_SRCS := debuginfod-lite/core.h debuginfod-lite/core.c debuginfod-lite/upstream.c \
                 debuginfod-lite/symbolize.c debuginfod-lite/store.h debuginfod-lite/store.c \
                 debuginfod-lite/artifact.h debuginfod-lite/artifact.c \
                 debuginfod-lite/scan.h debuginfod-lite/scan.c \
                 debuginfod-lite/budget.h debuginfod-lite/budget.c \
                 debuginfod-lite/ratelimit.h debuginfod-lite/ratelimit.c \
                 debuginfod-lite/sources.h debuginfod-lite/sources.c \
                 debuginfod-lite/config.h debuginfod-lite/config.c
DIL_PROFILE_SRCS := debuginfod-lite/profiles.h debuginfod-lite/profiles.c \
                    debuginfod-lite/profiles_ingest.c debuginfod-lite/profiles_merge.c
DIL_STORAGE_SRCS := debuginfod-lite/metadb.h debuginfod-lite/metadb.c debuginfod-lite/db_sqlite.c \
                    debuginfod-lite/db_postgres.c debuginfod-lite/blobs.h debuginfod-lite/blobs.c \
                    debuginfod-lite/blob_file.c debuginfod-lite/blob_s3.c \
                    debuginfod-lite/s3.h debuginfod-lite/s3.c
DIL_LAYERS := $(BUILD)/debuginfod-lite/layers.ok
all: $(DIL_LAYERS)
$(DIL_LAYERS): $(DIL_CORE_SRCS) $(DIL_PROFILE_SRCS) $(DIL_STORAGE_SRCS)
	@mkdir -p $(@D)
	@if grep -nE 'server_internal\.h|debuginfod-lite/server\.h|microhttpd\.h|struct (server|request)\b' $^; then \
	    echo "debuginfod-lite: the core, the profile store and the storage must not" \
	         "reach the HTTP layer (above); pass a struct core_ctx, struct core or" \
	         "struct profile_store" >&2; exit 1; fi
	@touch $@

# Fixture: a program with sources on disk, its stripped copy and its
# separate debug file (objcopy --only-keep-debug).
DIL_FIX := $(BUILD)/fixtures/debuginfod-lite
FIXTURES += $(DIL_FIX)/crash $(DIL_FIX)/crash.stripped $(DIL_FIX)/crash.debug

$(DIL_FIX)/crash: tests/fixtures/debuginfod-lite/crash.c tests/fixtures/debuginfod-lite/crash_util.h
	@mkdir -p $(@D)
	$(CC) -g -O1 -fno-omit-frame-pointer -Wl,--build-id=sha1 -o $@ $(abspath $<)

$(DIL_FIX)/crash.debug: $(DIL_FIX)/crash
	objcopy --only-keep-debug $< $@

$(DIL_FIX)/crash.stripped: $(DIL_FIX)/crash
	objcopy --strip-all $< $@

# make install also puts the systemd unit in place (PREFIX/DESTDIR honoured).
.PHONY: install-debuginfod-lite
install: install-debuginfod-lite
install-debuginfod-lite: all
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' contrib/debuginfod-lite.service \
	    >$(DESTDIR)$(PREFIX)/lib/systemd/system/debuginfod-lite.service
