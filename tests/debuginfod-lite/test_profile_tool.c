/* Writes the profiles tests/debuginfod-lite/test_profiles.sh posts, with
 * pprof/pprof.h (what the agent uses):
 *   test_profile_tool make OUT [--time NS] [--duration NS] [--label k=v]…
 *                     [--mapping BUILD_ID FILE]… < stacks
 * One sample per stdin line: addresses leaf first, each "hex" (first
 * mapping) or "N:hex" (mapping N, 1-based), then "= value".  Without
 * arguments it checks that what it writes reads back. */
#include "pprof/pprof.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MAPS 8
#define MAX_LABELS 8

static int make(int argc, char **argv)
{
	const char *out = argv[2];
	const char *types[] = {"samples", "cpu"}, *units[] = {"count", "nanoseconds"};
	struct pprof_profile *p = pprof_new(types, units, 2);
	if (!p)
		return 1;
	uint64_t maps[MAX_MAPS];
	size_t nmaps = 0, nlabels = 0;
	const char *labels[MAX_LABELS][2];
	char *label_buf[MAX_LABELS];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--time") && i + 1 < argc) {
			p->time_nanos = strtoll(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
			p->duration_nanos = strtoll(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--label") && i + 1 < argc && nlabels < MAX_LABELS) {
			char *kv = strdup(argv[++i]), *eq = kv ? strchr(kv, '=') : NULL;
			if (!eq)
				return 1;
			*eq = 0;
			label_buf[nlabels] = kv;
			labels[nlabels][0] = kv;
			labels[nlabels++][1] = eq + 1;
		} else if (!strcmp(argv[i], "--mapping") && i + 2 < argc && nmaps < MAX_MAPS) {
			maps[nmaps] = pprof_add_mapping(p, argv[i + 1], argv[i + 2]);
			if (!maps[nmaps++])
				return 1;
			i += 2;
		} else {
			fprintf(stderr, "test_profile_tool: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!nmaps) {
		fprintf(stderr, "test_profile_tool: no --mapping\n");
		return 2;
	}
	char line[4096];
	struct err e = {{0}};
	while (fgets(line, sizeof(line), stdin)) {
		struct pprof_frame fr[64];
		size_t n = 0;
		int64_t v[2] = {1, 10000000};
		for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
			if (!strcmp(tok, "=")) {
				tok = strtok(NULL, " \t\n");
				v[0] = tok ? strtoll(tok, NULL, 10) : 1;
				v[1] = v[0] * 10000000;
				break;
			}
			size_t m = 0;
			char *colon = strchr(tok, ':');
			if (colon) {
				m = strtoul(tok, NULL, 10) - 1;
				tok = colon + 1;
			}
			if (m >= nmaps)
				return 2;
			if (n < 64)
				fr[n++] = (struct pprof_frame){maps[m], strtoull(tok, NULL, 16)};
		}
		if (n && pprof_add_sample(p, fr, n, v, nlabels ? labels : NULL, nlabels, &e)) {
			fprintf(stderr, "test_profile_tool: %s\n", e.msg);
			return 1;
		}
	}
	if (pprof_write_file(p, out, true, &e)) {
		fprintf(stderr, "test_profile_tool: %s\n", e.msg);
		return 1;
	}
	for (size_t i = 0; i < nlabels; i++)
		free(label_buf[i]);
	pprof_free(p);
	return 0;
}

/* What make() writes reads back: time, labels, mappings, stacks. */
static void self_check(void)
{
	const char *types[] = {"samples"}, *units[] = {"count"};
	struct pprof_profile *p = pprof_new(types, units, 1);
	struct err e = {{0}};
	uint64_t m = pprof_add_mapping(p, "0123abcd", "/bin/x");
	p->time_nanos = 1700000000000000000;
	struct pprof_frame fr[2] = {{m, 0x1000}, {m, 0x2000}};
	int64_t v = 3;
	const char *labels[1][2] = {{"host", "h1"}};
	CHECK(pprof_add_sample(p, fr, 2, &v, labels, 1, &e) == 0, "tool_add_sample", "%s", e.msg);
	uint8_t *buf;
	size_t size;
	CHECK(pprof_serialize(p, true, &buf, &size, &e) == 0, "tool_serialize", "%s", e.msg);
	struct pprof_profile *q = NULL;
	CHECK(pprof_parse(buf, size, &q, &e) == 0 && q->time_nanos == p->time_nanos &&
		      q->samples.len == 1 && q->labels.len == 1 &&
		      !strcmp(pprof_str(q, VEC_AT(&q->labels, struct pprof_label, 0).str), "h1"),
	      "tool_roundtrip", "%s", e.msg);
	free(buf);
	pprof_free(q);
	pprof_free(p);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "make"))
		return make(argc, argv);
	self_check();
	CHECK_EXIT();
}
