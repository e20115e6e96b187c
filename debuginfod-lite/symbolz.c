/* POST /symbolz: the remote-symbolization step of Google's pprof.
 *
 * When pprof reads a profile from a URL and finds a mapping without
 * function names, it POSTs that mapping's addresses, "0x1a+0x2b+…", to
 * /symbolz on the same host and expects "0x1a name" lines back; any answer
 * but 200 makes it give up on the whole profile.  The request carries no
 * build-ID or mapping, so addresses cannot be tied to an object here.  They
 * need not be: GET /profiles already named every frame the server has
 * debuginfo for, so the addresses pprof asks about are exactly the ones
 * nothing here can name.  The honest answer is 200 with no lines, and pprof
 * shows those frames as addresses (docs/http-api.md, "Viewing profiles"). */
#include "debuginfod-lite/server_internal.h"

#include <ctype.h>
#include <string.h>

/* Is the body pprof's form: hex addresses ("0x" optional) joined by '+'? */
static bool symbolz_body_valid(const char *p, size_t len, size_t *count)
{
	size_t n = 0, i = 0;
	while (i < len) {
		if (len - i >= 2 && p[i] == '0' && (p[i + 1] == 'x' || p[i + 1] == 'X'))
			i += 2;
		size_t digits = 0;
		while (i < len && isxdigit((unsigned char)p[i]))
			i++, digits++;
		if (digits == 0 || digits > 16)
			return false;
		n++;
		if (i < len && p[i] != '+' && p[i] != '\n')
			return false;
		i++;
	}
	*count = n;
	return true;
}

enum MHD_Result handle_symbolz(struct request *r)
{
	size_t count = 0;
	if (!symbolz_body_valid(r->body.data, r->body.len, &count))
		return respond_text(r, 400, "expected hex addresses joined by '+'\n");
	r->srv->symbolz_addresses += count;
	return respond_buffer(r, 200, "text/plain", (void *)"", 0, false);
}
