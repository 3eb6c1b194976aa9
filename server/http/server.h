/*
 * server.h - running the HTTP front end on the calling thread.
 */
#ifndef COSERVE_HTTP_SERVER_H
#define COSERVE_HTTP_SERVER_H

#include <stddef.h>

#include "http/http.h"

/* The defaults of every limit and timeout (documented in --help). */
void http__config_defaults(struct http_config *cfg);

/* Sets up srv on the calling hub, accepting on every one of listen_fds
 * (nlisten may be 0: connections are then handed in with conn__accept, as
 * the fuzzer does). */
void http__server_init(struct http_server *srv, const struct http_config *cfg,
                       const int *listen_fds, unsigned nlisten);
/* Closes every connection and frees the pools. */
void http__server_fini(struct http_server *srv);

/* Serves connections from every listen_fds until SIGTERM or SIGINT, then
 * stops accepting (closing them) and lets in-flight requests finish within
 * wc->grace_ms. Returns 0 after a clean stop, -1 with errno if it could
 * not start. */
struct worker_config;
int http__serve(const struct http_config *cfg, const struct worker_config *wc,
                const int *listen_fds, unsigned nlisten);

#endif
