/* /proc text parsers (proc.h). */
#include "common/proc.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* A cursor over one line: every read is bounded by end. */
struct cursor {
	const char *p, *end;
};

static bool at_end(const struct cursor *c)
{
	return c->p >= c->end || *c->p == '\n';
}

static bool hex_u64(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	int digits = 0;
	for (; c->p < c->end; c->p++, digits++) {
		char ch = *c->p;
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			break;
		if (digits == 16)
			return false; /* more than 64 bits */
		v = v << 4 | d;
	}
	*out = v;
	return digits > 0;
}

static bool expect(struct cursor *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

static void skip_blanks(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* A field of non-blank characters; false when there is none. */
static bool field(struct cursor *c, const char **start, size_t *len)
{
	skip_blanks(c);
	*start = c->p;
	while (c->p < c->end && *c->p != ' ' && *c->p != '\t' && *c->p != '\n')
		c->p++;
	*len = (size_t)(c->p - *start);
	return *len > 0;
}

int proc_maps_line(const char *line, size_t len, struct proc_map *m)
{
	struct cursor c = { line, line + len };
	const char *f;
	size_t flen;
	memset(m, 0, sizeof(*m));
	if (!hex_u64(&c, &m->start) || !expect(&c, '-') || !hex_u64(&c, &m->end) ||
	    m->end <= m->start)
		return -EINVAL;
	if (!field(&c, &f, &flen) || flen != 4)
		return -EINVAL;
	memcpy(m->perms, f, 4);
	skip_blanks(&c);
	if (!hex_u64(&c, &m->offset))
		return -EINVAL;
	if (!field(&c, &f, &flen) || !memchr(f, ':', flen)) /* device major:minor */
		return -EINVAL;
	if (!field(&c, &f, &flen)) /* inode */
		return -EINVAL;
	for (size_t i = 0; i < flen; i++)
		if (f[i] < '0' || f[i] > '9')
			return -EINVAL;
	skip_blanks(&c);
	const char *path = c.p;
	while (!at_end(&c))
		c.p++;
	m->path = path;
	m->path_len = (size_t)(c.p - path);
	return 0;
}

pid_t proc_status_nspid(const char *text, size_t len)
{
	static const char key[] = "NSpid:";
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		if ((size_t)(line_end - p) >= sizeof(key) - 1 && !memcmp(p, key, sizeof(key) - 1)) {
			struct cursor c = { p + sizeof(key) - 1, line_end };
			long last = 0;
			const char *f;
			size_t flen;
			while (field(&c, &f, &flen)) {
				long v = 0;
				for (size_t i = 0; i < flen; i++) {
					if (f[i] < '0' || f[i] > '9' || v > 99999999)
						return 0; /* not a pid */
					v = v * 10 + (f[i] - '0');
				}
				last = v;
			}
			return (pid_t)last;
		}
		p = line_end + 1;
	}
	return 0;
}

int proc_kallsyms_line(const char *line, size_t len, uint64_t *addr, char *type,
		       const char **name, size_t *name_len)
{
	struct cursor c = { line, line + len };
	const char *f;
	size_t flen;
	if (!hex_u64(&c, addr) || !field(&c, &f, &flen) || flen != 1)
		return -EINVAL;
	*type = f[0];
	if (!field(&c, name, name_len))
		return -EINVAL;
	return 0;
}
