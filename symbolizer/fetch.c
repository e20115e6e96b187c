/* Debuginfo by build-ID through libdebuginfod, the client users already
 * configure: $DEBUGINFOD_URLS, its cache ($DEBUGINFOD_CACHE_PATH, misses
 * remembered as elfutils does), $DEBUGINFOD_TIMEOUT, $DEBUGINFOD_RETRY_LIMIT
 * and $DEBUGINFOD_HEADERS_FILE (a bearer token for private servers). */
#include "symbolizer/cli.h"

#include <elfutils/debuginfod.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int symz_fetch_debuginfo(const char *server, const uint8_t *id, size_t len, char **path,
			 struct err *e)
{
	*path = NULL;
	/* --server names the servers for this process; without it the
	 * environment's $DEBUGINFOD_URLS applies, as for gdb. */
	if (server && setenv("DEBUGINFOD_URLS", server, 1) != 0)
		return err_set(e, errno, "setenv: %s", strerror(errno));
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (!urls || !*urls)
		return err_set(e, ENOENT, "no --server and no $DEBUGINFOD_URLS");
	debuginfod_client *client = debuginfod_begin();
	if (!client)
		return err_set(e, ENOMEM, "cannot start a debuginfod client");
	int fd = debuginfod_find_debuginfo(client, id, (int)len, path);
	debuginfod_end(client);
	if (fd < 0) {
		char hex[BUILD_ID_HEX_MAX];
		build_id_to_hex(id, len, hex);
		if (fd == -ENOENT)
			return err_set(e, ENOENT, "%s: no debuginfo on %s", hex, urls);
		return err_set(e, -fd, "%s: debuginfod %s: %s", hex, urls, strerror(-fd));
	}
	close(fd);
	return 0;
}
