/* Fetching debuginfo by build-ID from a debuginfod server (libcurl). */
#include "symbolizer/cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int symz_fetch_debuginfod(const char *server, const char *hex, const char *what, const char *dest,
			  struct err *e)
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
	CURLcode cr = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (fclose(f) != 0 && cr == CURLE_OK)
		return err_set(e, errno, "%s: %s", dest, strerror(errno));
	if (cr != CURLE_OK) {
		unlink(dest);
		if (status == 404)
			return err_set(e, ENOENT, "%s: not found on the server", url);
		return err_set(e, EIO, "%s: %s", url, curl_easy_strerror(cr));
	}
	return 0;
}
