/* libFuzzer target for the pprof reader: any bytes as a (gzipped) profile.
 * An accepted profile must serialize, parse back to the same bytes, merge
 * into itself and report location kinds. */
#include "pprof/pprof.h"

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pprof_profile *p, *q;
	struct err e = {{0}};
	if (pprof_parse(data, size, &p, &e)) {
		if (!e.msg[0])
			abort(); /* every failure must say why */
		return 0;
	}
	uint8_t *a, *b;
	size_t na, nb;
	if (pprof_serialize(p, false, &a, &na, &e))
		abort();
	if (pprof_parse(a, na, &q, &e))
		abort(); /* we wrote something we cannot read */
	if (pprof_serialize(q, false, &b, &nb, &e) || na != nb || memcmp(a, b, na))
		abort();
	uint8_t *kinds;
	if (pprof_location_kinds(q, &kinds, &e) == 0)
		free(kinds);
	pprof_merge(q, p, &e);
	free(a);
	free(b);
	pprof_free(p);
	pprof_free(q);
	return 0;
}
