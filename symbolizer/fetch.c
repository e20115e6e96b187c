/* Debuginfo by build-ID through libdebuginfod, the client users already
 * configure: $DEBUGINFOD_URLS, its cache ($DEBUGINFOD_CACHE_PATH, misses
 * remembered as elfutils does), $DEBUGINFOD_TIMEOUT, $DEBUGINFOD_RETRY_LIMIT
 * and $DEBUGINFOD_HEADERS_FILE; --token-file adds a bearer token. */
#include "symbolizer/cli.h"

#include <elfutils/debuginfod.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int symz_read_token_file(const char *path, char *token, size_t size, struct err *e)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return err_set(e, errno, "--token-file %s: %s", path, strerror(errno));
	char line[512];
	const char *found = NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		char *p = line + strspn(line, " \t");
		if (*p && *p != '#')
			found = p;
	}
	fclose(f);
	if (!found)
		return err_set(e, EINVAL, "--token-file %s: no token in it", path);
	if (strlen(found) >= size)
		return err_set(e, EINVAL, "--token-file %s: token too long", path);
	snprintf(token, size, "%s", found);
	return 0;
}

int symz_fetch_debuginfo(const char *server, const char *token, const uint8_t *id, size_t len,
			 char **path, struct err *e)
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
	if (token) {
		char auth[600];
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		if (debuginfod_add_http_header(client, auth) < 0) {
			debuginfod_end(client);
			return err_set(e, EINVAL, "the token cannot be sent as a header");
		}
	}
	int fd = debuginfod_find_debuginfo(client, id, (int)len, path);
	debuginfod_end(client);
	if (fd < 0) {
		char hex[BUILD_ID_HEX_MAX];
		build_id_to_hex(id, len, hex);
		if (fd == -ENOENT)
			return err_set(e, ENOENT, "%s: no debuginfo on %s", hex, urls);
		if (fd == -EACCES)
			return err_set(e, EACCES, "%s: %s wants a token (--token-file)", hex, urls);
		return err_set(e, -fd, "%s: debuginfod %s: %s", hex, urls, strerror(-fd));
	}
	close(fd);
	return 0;
}
