/* Unwind rows from .gopclntab (see go_rows.h). */
#include "unwind-compiler/go_rows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* End of the code pcsp describes: the last run's end, so the alignment
 * padding up to the next function is left to compile.c's gap logic. */
static int pcsp_end(const struct go_pclntab *t, const struct go_func *f, uint64_t *end,
		    struct err *e)
{
	struct go_pcvalue_iter it;
	uint64_t s, en = f->entry;
	int32_t v;
	int r;
	go_pcvalue_begin(t, f, f->pcsp, &it);
	while ((r = go_pcvalue_next(&it, &s, &en, &v)) > 0)
		;
	if (r < 0)
		return err_set(e, EINVAL, ".gopclntab: %s: malformed SP-delta table", f->name);
	*end = en > f->entry ? en : f->end;
	return 0;
}

struct go_range {
	uint64_t start, end;
};

static int cmp_u64_range(const void *a, const void *b)
{
	const struct go_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

int go_add_funcs(const struct go_pclntab *t, struct vec *fdes, size_t *go_funcs, struct err *e)
{
	*go_funcs = 0;
	struct go_range *ranges = calloc(t->nfunc, sizeof(*ranges));
	if (!ranges)
		return err_set(e, ENOMEM, "out of memory for %u Go functions", t->nfunc);
	size_t n = 0;
	int rc = 0;
	for (uint32_t i = 0; i < t->nfunc; i++) {
		struct go_func f;
		if ((rc = go_pclntab_func(t, i, &f, e)) < 0)
			goto out;
		uint64_t end = 0;
		if ((rc = pcsp_end(t, &f, &end, e)) < 0)
			goto out;
		ranges[n++] = (struct go_range){f.entry, end};
	}
	/* go_pclntab_func checked entry < end per function; the table must
	 * also be sorted, or the walker's rows would overlap. */
	for (size_t i = 1; i < n; i++)
		if (ranges[i].start < ranges[i - 1].end) {
			rc = err_set(e, EINVAL, ".gopclntab: functions at 0x%llx and 0x%llx overlap",
				     (unsigned long long)ranges[i - 1].start,
				     (unsigned long long)ranges[i].start);
			goto out;
		}
	/* Drop the CFI FDEs that overlap Go code. */
	struct fde *f = fdes->data;
	size_t kept = 0;
	for (size_t i = 0; i < fdes->len; i++) {
		struct go_range key = {f[i].end, 0};
		/* first Go range starting at or after the FDE's end */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (cmp_u64_range(&ranges[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		bool overlap = lo > 0 && ranges[lo - 1].end > f[i].start;
		if (!overlap)
			f[kept++] = f[i];
	}
	fdes->len = kept;
	if ((rc = vec_reserve(fdes, kept + n)) < 0) {
		rc = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct fde *p = vec_push(fdes);
		p->start = ranges[i].start;
		p->end = ranges[i].end;
		p->go_func = (uint32_t)i + 1;
	}
	*go_funcs = n;
out:
	free(ranges);
	return rc;
}

static struct unwind_rule go_rule(int32_t sp_delta)
{
	struct unwind_rule r = {
		.cfa_type = UNWIND_CFA_REG,
		.cfa_reg = UNWIND_X86_RSP,
		.rbp_type = UNWIND_LOC_UNDEFINED,
		.ra_type = UNWIND_LOC_AT_CFA,
		.ra_arg = -8,
	};
	if (sp_delta < 0 || sp_delta > INT32_MAX - 8)
		return (struct unwind_rule){.cfa_type = UNWIND_CFA_UNSUPPORTED,
					    .cfa_reg = UNWIND_UNSUP_RANGE};
	r.cfa_offset = sp_delta + 8;
	return r;
}

int go_func_rows(const struct go_pclntab *t, uint32_t idx, go_emit_fn emit, void *arg,
		 uint64_t *rows, struct err *e)
{
	struct go_func f;
	int rc = go_pclntab_func(t, idx, &f, e);
	if (rc < 0)
		return rc;
	if (f.flag & (GO_FUNC_F_TOPFRAME | GO_FUNC_F_SPWRITE)) {
		/* The outermost frame: its caller, if any, is on another stack. */
		struct unwind_rule top = go_rule(0);
		top.ra_type = UNWIND_LOC_UNDEFINED;
		top.ra_arg = 0;
		(*rows)++;
		return emit(arg, f.entry, &top);
	}
	struct go_pcvalue_iter it;
	uint64_t s, en;
	int32_t v;
	go_pcvalue_begin(t, &f, f.pcsp, &it);
	while ((rc = go_pcvalue_next(&it, &s, &en, &v)) > 0) {
		struct unwind_rule r = go_rule(v);
		(*rows)++;
		if ((rc = emit(arg, s, &r)) < 0)
			return rc;
	}
	if (rc < 0)
		return err_set(e, EINVAL, ".gopclntab: %s: malformed SP-delta table", f.name);
	return 0;
}
