/* Fetching debuginfo by build-ID from a debuginfod server (libcurl). */
#include "symbolizer/cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
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

int symz_fetch_debuginfod(const char *server, const char *token, const char *hex,
			  const char *what, const char *dest, struct err *e)
{
	char url[4096];
	size_t sl = strlen(server);
	while (sl && server[sl - 1] == '/')
		sl--;
	snprintf(url, sizeof(url), "%.*s/buildid/%s/%s", (int)sl, server, hex, what);
	FILE *f = fopen(dest, "wb");
	if (!f)
		return err_set(e, errno, "%s: %s", dest, strerror(errno));
	CURL *c = curl_easy_init();
	if (!c) {
		fclose(f);
		return err_set(e, ENOMEM, "cannot initialise libcurl");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	struct curl_slist *headers = NULL;
	if (token) {
		char auth[600];
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers = curl_slist_append(NULL, auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	}
	CURLcode cr = curl_easy_perform(c);
	curl_slist_free_all(headers);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (fclose(f) != 0 && cr == CURLE_OK)
		return err_set(e, errno, "%s: %s", dest, strerror(errno));
	if (cr != CURLE_OK) {
		unlink(dest);
		if (status == 404)
			return err_set(e, ENOENT, "%s: not found on the server", url);
		if (status == 401)
			return err_set(e, EACCES, "%s: the server wants a token (--token-file)", url);
		return err_set(e, EIO, "%s: %s", url, curl_easy_strerror(cr));
	}
	return 0;
}
