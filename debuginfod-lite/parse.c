/* Request parsers: Range, Accept-Encoding, the /symbolize body. */
#include "debuginfod-lite/parse.h"
#include "debuginfod-lite/artifact.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int http_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	const char *p = h + 6;
	char *end;
	if (*p == '-') {
		if (!isdigit((unsigned char)p[1]))
			return 0;
		errno = 0;
		uint64_t n = strtoull(p + 1, &end, 10);
		if (errno || *end)
			return 0;
		if (n == 0 || size == 0)
			return -1;
		*first = n >= size ? 0 : size - n;
		*last = size - 1;
		return 1;
	}
	if (!isdigit((unsigned char)*p))
		return 0;
	errno = 0;
	uint64_t a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 0;
	p = end + 1;
	uint64_t b = size ? size - 1 : 0;
	if (*p) {
		if (!isdigit((unsigned char)*p))
			return 0;
		b = strtoull(p, &end, 10);
		if (errno || *end || b < a)
			return 0;
		if (b >= size)
			b = size - 1;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b;
	return 1;
}

/* One element of Accept-Encoding: "coding[;q=x]".  Returns whether the
 * client accepts `coding` (explicitly or through "*"), -1 if not named. */
static int coding_accepted(const char *h, const char *coding)
{
	int star = -1;
	size_t clen = strlen(coding);
	for (const char *p = h; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *name = p;
		while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		size_t nlen = (size_t)(p - name);
		bool zero_q = false;
		while (*p && *p != ',') {
			/* parameters: only q matters; q=0 (0.000) refuses */
			if ((*p == 'q' || *p == 'Q') && p[1] == '=') {
				const char *v = p + 2;
				zero_q = *v == '0';
				for (v++; zero_q && *v && *v != ',' && *v != ';' && *v != ' '; v++)
					zero_q = *v == '0' || *v == '.';
			}
			p++;
		}
		if (nlen == 0)
			continue;
		if (nlen == clen && strncasecmp(name, coding, clen) == 0)
			return !zero_q;
		if (nlen == 1 && *name == '*')
			star = !zero_q;
	}
	return star;
}

enum content_coding http_pick_coding(const char *h)
{
	if (!h)
		return CODING_IDENTITY;
	/* zstd first: it compresses as well as gzip at a fraction of the CPU. */
	if (coding_accepted(h, "zstd") == 1)
		return CODING_ZSTD;
	if (coding_accepted(h, "gzip") == 1 || coding_accepted(h, "x-gzip") == 1)
		return CODING_GZIP;
	return CODING_IDENTITY;
}

bool metadata_glob_match(const char *glob, const char *path)
{
	return fnmatch(glob, path, FNM_PATHNAME) == 0;
}

static int fail(char *msg, size_t size, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- the strict HTTP edge --- */

size_t http_unescape(char *s)
{
	char *w = s;
	for (const char *p = s; *p;) {
		int hi, lo;
		if (p[0] == '%' && (hi = hex_value((unsigned char)p[1])) >= 0 &&
		    (lo = hex_value((unsigned char)p[2])) >= 0) {
			int c = hi << 4 | lo;
			*w++ = c ? (char)c : 0x7f;
			p += 3;
		} else {
			*w++ = *p++;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

int query_params_check(const struct query_param *p, size_t n, const char *const *repeatable,
		       char *msg, size_t msz)
{
	if (n > QUERY_MAX_PARAMS)
		return fail(msg, msz, -EINVAL, "more than %d query parameters", QUERY_MAX_PARAMS);
	for (size_t i = 0; i < n; i++) {
		if (has_control_byte(p[i].key) || (p[i].value && has_control_byte(p[i].value)))
			return fail(msg, msz, -EINVAL, "control byte in query parameter %zu", i + 1);
		bool many = false;
		for (const char *const *r = repeatable; r && *r && !many; r++)
			many = strcmp(*r, p[i].key) == 0;
		for (size_t j = 0; j < i && !many; j++)
			if (strcmp(p[j].key, p[i].key) == 0)
				return fail(msg, msz, -EINVAL, "parameter '%.60s' given more than once",
					    p[i].key);
	}
	return 0;
}

int parse_query_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return -EINVAL;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

void http_header_escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	if (size == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool plain = *p >= 0x20 && *p < 0x7f && *p != '%';
		size_t need = plain ? 1 : 3;
		if (o + need >= size)
			break;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = 0;
}

/* --- POST /symbolize --- */

static int fail(char *msg, size_t size, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, size, fmt, ap);
	va_end(ap);
	return rc;
}

/* "0x1a2b", "1a2b" (hex, as symbolize reads stdin) or a JSON integer. */
static bool parse_address(json_t *v, uint64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0)
			return false;
		*out = (uint64_t)n;
		return true;
	}
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (len == 0 || len > 16 || strlen(s) != len)
		return false;
	uint64_t a = 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		a = a << 4 | (uint64_t)d;
	}
	*out = a;
	return true;
}

static int parse_entry(json_t *o, size_t i, const struct symbolize_limits *lim,
		       struct symbolize_batch *b, char *msg, size_t msz)
{
	struct symbolize_entry *en = &b->entries[i];
	en->kind = SYMZ_LEAF_PC;
	en->inlines = true;
	if (!json_is_object(o))
		return fail(msg, msz, -EINVAL, "requests[%zu]: expected an object", i);
	const char *key;
	json_t *v;
	json_t *addrs = NULL;
	bool have_id = false;
	json_object_foreach(o, key, v) {
		if (strcmp(key, "build_id") == 0) {
			if (!json_is_string(v))
				return fail(msg, msz, -EINVAL, "requests[%zu].build_id: expected a string", i);
			size_t n = json_string_length(v);
			const char *s = json_string_value(v);
			if (n >= sizeof(en->build_id) || strlen(s) != n)
				return fail(msg, msz, -EINVAL, "requests[%zu].build_id: invalid", i);
			for (size_t k = 0; k <= n; k++)
				en->build_id[k] = (char)tolower((unsigned char)s[k]);
			if (!build_id_valid(en->build_id, n))
				return fail(msg, msz, -EINVAL,
					    "requests[%zu].build_id: expected 2-128 hex digits, even length", i);
			have_id = true;
		} else if (strcmp(key, "kind") == 0) {
			const char *s = json_is_string(v) ? json_string_value(v) : "";
			if (strcmp(s, "leaf") == 0)
				en->kind = SYMZ_LEAF_PC;
			else if (strcmp(s, "return") == 0)
				en->kind = SYMZ_RETURN_ADDRESS;
			else if (strcmp(s, "adjusted") == 0)
				en->kind = SYMZ_ADJUSTED;
			else
				return fail(msg, msz, -EINVAL,
					    "requests[%zu].kind: expected \"leaf\", \"return\" or \"adjusted\"", i);
		} else if (strcmp(key, "inlines") == 0) {
			if (!json_is_boolean(v))
				return fail(msg, msz, -EINVAL, "requests[%zu].inlines: expected true or false", i);
			en->inlines = json_is_true(v);
		} else if (strcmp(key, "addresses") == 0) {
			if (!json_is_array(v))
				return fail(msg, msz, -EINVAL, "requests[%zu].addresses: expected an array", i);
			addrs = v;
		} else {
			return fail(msg, msz, -EINVAL, "requests[%zu]: unknown key \"%.64s\"", i, key);
		}
	}
	if (!have_id)
		return fail(msg, msz, -EINVAL, "requests[%zu]: missing \"build_id\"", i);
	if (!addrs)
		return fail(msg, msz, -EINVAL, "requests[%zu]: missing \"addresses\"", i);
	size_t n = json_array_size(addrs);
	if (n > lim->max_addresses - b->n_addrs)
		return fail(msg, msz, -E2BIG, "more than %zu addresses in one request",
			    lim->max_addresses);
	en->first = b->n_addrs;
	en->count = n;
	for (size_t k = 0; k < n; k++)
		if (!parse_address(json_array_get(addrs, k), &b->addrs[b->n_addrs++]))
			return fail(msg, msz, -EINVAL,
				    "requests[%zu].addresses[%zu]: expected a hex string (\"0x1234\") "
				    "or a non-negative integer", i, k);
	return 0;
}

int symbolize_parse(const char *body, size_t len, const struct symbolize_limits *lim,
		    struct symbolize_batch *b, char *msg, size_t msz)
{
	memset(b, 0, sizeof(*b));
	json_error_t je;
	/* jansson bounds nesting depth itself (JSON_PARSER_MAX_DEPTH). */
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return fail(msg, msz, -EINVAL, "bad JSON at line %d column %d: %s", je.line,
			    je.column, je.text);
	int rc = 0;
	json_t *reqs = json_is_object(root) ? json_object_get(root, "requests") : NULL;
	if (!reqs || !json_is_array(reqs) || json_object_size(root) != 1) {
		rc = fail(msg, msz, -EINVAL, "expected {\"requests\":[…]} and nothing else");
		goto out;
	}
	size_t n = json_array_size(reqs);
	if (n > lim->max_requests) {
		rc = fail(msg, msz, -E2BIG, "more than %zu requests (build-IDs) in one body",
			  lim->max_requests);
		goto out;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_object_get(json_array_get(reqs, i), "addresses");
		total += json_is_array(a) ? json_array_size(a) : 0;
	}
	if (total > lim->max_addresses) {
		rc = fail(msg, msz, -E2BIG, "more than %zu addresses in one request",
			  lim->max_addresses);
		goto out;
	}
	b->entries = calloc(n ? n : 1, sizeof(*b->entries));
	b->addrs = calloc(total ? total : 1, sizeof(*b->addrs));
	if (!b->entries || !b->addrs) {
		rc = fail(msg, msz, -ENOMEM, "out of memory");
		goto out;
	}
	b->n_entries = n;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = parse_entry(json_array_get(reqs, i), i, lim, b, msg, msz);
out:
	json_decref(root);
	if (rc)
		symbolize_batch_free(b);
	return rc;
}

void symbolize_batch_free(struct symbolize_batch *b)
{
	free(b->entries);
	free(b->addrs);
	memset(b, 0, sizeof(*b));
}
