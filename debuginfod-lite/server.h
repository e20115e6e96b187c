/* debuginfod-lite: the HTTP server (libmicrohttpd) over the store.
 * main.c parses the command line into a server_config and runs it. */
#ifndef DEBUGINFOD_LITE_SERVER_H
#define DEBUGINFOD_LITE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "debuginfod-lite/config.h"

struct server;
/* Open the store, start scanning and listening.  Returns 0 or -errno. */
int server_start(struct server **out, const struct server_config *c, struct err *e);
/* The port actually bound (useful with --listen 127.0.0.1:0). */
unsigned server_port(const struct server *s);
/* Stop accepting, let in-flight requests finish (bounded), free. */
void server_stop(struct server *s);

#endif
