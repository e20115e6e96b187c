/* Names: demangling (libiberty, which knows C++ and both Rust manglings)
 * and GCC clone suffixes. */
#include "symbolizer/internal.h"

#include <ctype.h>
#include <libiberty/demangle.h>
#include <stdlib.h>
#include <string.h>

char *symz_demangle(const char *name)
{
	if (!name)
		return NULL;
	const char *at = strchr(name, '@');
	char *copy = NULL;
	if (at && at != name) { /* symbol version: "memcpy@GLIBC_2.14", "f@@V" */
		copy = strndup(name, (size_t)(at - name));
		if (!copy)
			return NULL;
		name = copy;
	}
	char *r = NULL;
	if (name[0] == '_' && (name[1] == 'Z' || name[1] == 'R'))
		r = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	if (!r && copy) {
		r = copy; /* version stripped, not mangled */
		copy = NULL;
	}
	free(copy);
	return r;
}

/* GCC appends these to clones and split parts; the source function is the
 * name before the first of them. */
static const char *const clone_suffixes[] = {
	".cold", ".part.", ".isra.", ".constprop.", ".lto_priv.", ".localalias",
	".specialized.",
};

char *symz_strip_clone_suffix(const char *name)
{
	const char *cut = NULL;
	for (size_t i = 0; i < sizeof(clone_suffixes) / sizeof(clone_suffixes[0]); i++) {
		const char *p = strstr(name, clone_suffixes[i]);
		if (p && p != name && (!cut || p < cut))
			cut = p;
	}
	if (!cut)
		return NULL;
	return strndup(name, (size_t)(cut - name));
}
