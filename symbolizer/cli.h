/* The symbolize program's pieces (kept out of main.c so tests can reach them). */
#ifndef SYMZ_CLI_H
#define SYMZ_CLI_H

#include <stdio.h>

#include "symbolizer/symbolizer.h"

int symz_cli_main(int argc, char **argv);

/* Where an index for a build-ID is cached: <cache_dir>/<hex>.v<version>.symz */
void symz_cache_path(char *out, size_t size, const char *cache_dir, const uint8_t *id, size_t len);
/* Index for an ELF path, from the cache when there is one (cache_dir NULL: none). */
int symz_open_for_elf(const char *path, const struct symz_build_options *opt, const char *cache_dir,
		      struct symz_index **out, struct err *e);

/* `symbolize pprof IN -o OUT ...` */
int symz_pprof_main(int argc, char **argv);

/* Debuginfo of a build-ID from debuginfod servers (server, else
 * $DEBUGINFOD_URLS) through libdebuginfod; token (may be NULL) goes along as
 * "Authorization: Bearer <token>" (a debuginfod-lite --private server).
 * *path (malloc'ed) names the file in the client's cache. */
int symz_fetch_debuginfo(const char *server, const char *token, const uint8_t *id, size_t len,
			 char **path, struct err *e);
/* The first token of a token file (one a line, '#' comments), as
 * debuginfod-lite --token-file / --read-token-file read them. */
int symz_read_token_file(const char *path, char *token, size_t size, struct err *e);
/* $XDG_CACHE_HOME/symbolize, else ~/.cache/symbolize, in buf; NULL when
 * neither variable is set. */
const char *symz_default_cache_dir(char *buf, size_t size);

#endif
