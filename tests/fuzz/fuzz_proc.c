/* libFuzzer target for the /proc parsers (common/proc.h): every line of the
 * input goes through the maps and kallsyms line parsers, the whole input
 * through the NSpid parser.  Checks what callers rely on: a parsed mapping
 * is non-empty and its path lies inside the line. */
#include "common/proc.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy of exactly size bytes: the parsers must not rely on
	 * a NUL after the buffer (the replay's reader adds one). */
	char *copy = fuzz_copy(data, size);
	if (!copy)
		return 0;
	const char *text = copy, *end = text + size;
	(void)proc_status_nspid(text, size);
	for (const char *p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl + 1 : end) - p);
		struct proc_map m;
		if (proc_maps_line(p, len, &m) == 0) {
			if (m.end <= m.start || m.path < p || m.path + m.path_len > p + len ||
			    memchr(m.path, '\n', m.path_len))
				abort();
		}
		uint64_t addr;
		char type;
		const char *name;
		size_t name_len;
		if (proc_kallsyms_line(p, len, &addr, &type, &name, &name_len) == 0 &&
		    (name < p || name + name_len > p + len || name_len == 0))
			abort();
		p += len;
	}
	free(copy);
	return 0;
}
