/* Names for people (unwind-sample --symbolize).  Each object gets its own
 * Dwfl with the file reported at bias 0, so module addresses are exactly the
 * normalized file addresses that frames carry. */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/loader.h"

struct symbolizer_object {
	char *path;
	Dwfl *dwfl;
	Dwfl_Module *mod;
};

struct frame_symbolizer {
	struct vec objects; /* struct symbolizer_object */
};

static const Dwfl_Callbacks offline_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

int frame_symbolizer_new(struct frame_symbolizer **out)
{
	struct frame_symbolizer *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	vec_init(&fs->objects, sizeof(struct symbolizer_object));
	*out = fs;
	return 0;
}

static Dwfl_Module *module_for(struct frame_symbolizer *fs, const char *path)
{
	for (size_t i = 0; i < fs->objects.len; i++) {
		struct symbolizer_object *o = &VEC_AT(&fs->objects, struct symbolizer_object, i);
		if (!strcmp(o->path, path))
			return o->mod;
	}
	struct symbolizer_object *o = vec_push(&fs->objects);
	if (!o)
		return NULL;
	o->path = strdup(path);
	o->dwfl = dwfl_begin(&offline_callbacks);
	if (o->dwfl) {
		o->mod = dwfl_report_elf(o->dwfl, path, path, -1, 0, false);
		dwfl_report_end(o->dwfl, NULL, NULL);
	}
	return o->mod;
}

const char *frame_symbolize(struct frame_symbolizer *fs, const char *path, uint64_t addr,
			    bool is_return, char *buf, size_t size)
{
	if (path[0] != '/')
		return NULL;
	Dwfl_Module *mod = module_for(fs, path);
	if (!mod)
		return NULL;
	GElf_Sym sym;
	GElf_Off off = 0;
	const char *n = dwfl_module_addrinfo(mod, is_return ? addr - 1 : addr, &off, &sym, NULL,
					     NULL, NULL);
	if (!n)
		return NULL;
	snprintf(buf, size, "%s", n);
	return buf;
}

void frame_symbolizer_free(struct frame_symbolizer *fs)
{
	if (!fs)
		return;
	for (size_t i = 0; i < fs->objects.len; i++) {
		struct symbolizer_object *o = &VEC_AT(&fs->objects, struct symbolizer_object, i);
		if (o->dwfl)
			dwfl_end(o->dwfl);
		free(o->path);
	}
	vec_free(&fs->objects);
	free(fs);
}
