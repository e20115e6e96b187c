# pprof/: the profile model, codec, validation and merge (libpprof.a).
# It depends on common/ only: the agent writes profiles through it without
# linking the symbolizer.
PPROF_LIB_SRCS := pprof/profile.c pprof/codec.c
PPROF_LIB_OBJS := $(PPROF_LIB_SRCS:%.c=$(OBJ)/%.o)
PPROF_LIB      := $(LIB)/libpprof.a
DEPFILES       += $(PPROF_LIB_OBJS:.o=.d)
TEST_LIBS_PRE  += $(PPROF_LIB)

$(PPROF_LIB): $(PPROF_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
