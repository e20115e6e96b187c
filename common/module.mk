# common/: helpers every component links (errors, ELF access, build-IDs).
COMMON_SRCS := common/util.c common/elf.c common/sha256.c common/proc.c common/hashmap.c \
               common/gzip.c common/gopclntab.c
COMMON_OBJS := $(COMMON_SRCS:%.c=$(OBJ)/%.o)
COMMON_LIB  := $(LIB)/libcommon.a
COMMON_LDLIBS := -lelf -lz -lzstd -lcrypto
DEPFILES    += $(COMMON_OBJS:.o=.d)

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^
