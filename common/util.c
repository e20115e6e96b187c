/* Errors, growable arrays, build-ID text, files and clocks. */
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int err_set(struct err *e, int errnum, const char *fmt, ...)
{
	if (e && !e->msg[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

void err_clear(struct err *e)
{
	e->msg[0] = 0;
}

void vec_init(struct vec *v, size_t elem_size)
{
	v->data = NULL;
	v->len = v->cap = 0;
	v->elem_size = elem_size;
}

int vec_reserve(struct vec *v, size_t cap)
{
	if (cap <= v->cap)
		return 0;
	size_t ncap = v->cap ? v->cap : 16;
	while (ncap < cap)
		ncap *= 2;
	void *n = realloc(v->data, ncap * v->elem_size);
	if (!n)
		return -ENOMEM;
	v->data = n;
	v->cap = ncap;
	return 0;
}

void *vec_push(struct vec *v)
{
	if (v->len == v->cap && vec_reserve(v, v->len + 1))
		return NULL;
	void *p = (char *)v->data + v->len++ * v->elem_size;
	memset(p, 0, v->elem_size);
	return p;
}

void vec_free(struct vec *v)
{
	free(v->data);
	v->data = NULL;
	v->len = v->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

size_t sort_unique_u64(uint64_t *v, size_t n)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (!u || v[i] != v[u - 1])
			v[u++] = v[i];
	return u;
}

void build_id_to_hex(const uint8_t *id, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	if (len > BUILD_ID_MAX)
		len = BUILD_ID_MAX;
	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[id[i] >> 4];
		hex[2 * i + 1] = digits[id[i] & 15];
	}
	hex[2 * len] = 0;
}

int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int build_id_from_hex(const char *hex, uint8_t *id, size_t *len)
{
	size_t n = strlen(hex);
	if (n < 2 || n % 2 || n > 2 * BUILD_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

int open_regular_file(const char *path, struct stat *st, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "cannot open: %s", strerror(errno));
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return err_set(e, EINVAL, "not a regular file");
	}
	return fd;
}

int read_file(const char *path, size_t max_size, uint8_t **out, size_t *out_size,
	      struct err *e)
{
	struct stat st;
	int fd = open_regular_file(path, &st, e);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > max_size) {
		close(fd);
		return err_set(e, EFBIG, "file is %lld bytes, over the %zu-byte limit",
			       (long long)st.st_size, max_size);
	}
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return err_set(e, ENOMEM, "out of memory reading %lld bytes", (long long)st.st_size);
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int saved = r < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return err_set(e, saved, "read failed after %zu bytes", got);
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*out_size = got;
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
		      struct err *e)
{
	/* A unique name per call (mkstemp), so threads or processes writing
	 * the same path never share a temporary file; the last rename wins
	 * and every reader sees one whole version. */
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
		return err_set(e, ENAMETOOLONG, "%s: path too long", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_set(e, errno, "cannot create %s: %s", tmp, strerror(errno));
	if (fchmod(fd, mode) != 0) {
		int saved = errno;
		close(fd);
		unlink(tmp);
		return err_set(e, saved, "cannot chmod %s: %s", tmp, strerror(saved));
	}
	size_t done = 0;
	while (done < size) {
		ssize_t w = write(fd, (const uint8_t *)data + done, size - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int saved = w < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return err_set(e, saved, "cannot write %s: %s", tmp, strerror(saved));
		}
		done += (size_t)w;
	}
	if (fsync(fd) != 0) {
		int saved = errno;
		close(fd);
		unlink(tmp);
		return err_set(e, saved, "cannot write %s: %s", path, strerror(saved));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		int saved = errno;
		unlink(tmp);
		return err_set(e, saved, "cannot write %s: %s", path, strerror(saved));
	}
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool has_control_byte(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

size_t utf8_sequence(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* the allowed range of s[1] */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_sequence(p + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

char *utf8_scrub(const char *s)
{
	size_t n = strlen(s);
	/* At worst every byte grows to the three of U+FFFD. */
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_sequence(p + i, n - i);
		if (k == 0) {
			memcpy(out + o, UTF8_REPLACEMENT, 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		}
	}
	out[o] = 0;
	return out;
}
