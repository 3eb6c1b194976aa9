/*
 * server.h - the HTTP front end's entry points: start, stop(grace), and
 * the per-request hook in struct http_config.
 *
 * http/ knows no process: whoever runs it (server/worker.c) installs the
 * signals, decides when to stop and with what grace, and counts requests
 * through cfg->on_request_done if it wants to recycle.
 */
#ifndef COSERVE_HTTP_SERVER_H
#define COSERVE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

/* The defaults of every limit and timeout (documented in --help). */
void http__config_defaults(struct http_config *cfg);

/* Sets up srv on the calling hub, accepting on every one of listen_fds
 * (nlisten may be 0: connections are then handed in with conn__accept, as
 * the fuzzer does). Nothing is accepted until http__start's second half:
 * unit tests and the fuzzer use this alone. */
void http__server_init(struct http_server *srv, const struct http_config *cfg,
                       const int *listen_fds, unsigned nlisten);
/* Closes every connection and frees the pools. */
void http__server_fini(struct http_server *srv);

/* http__server_init, then begins accepting on every listener; returns at
 * once (connections are served from the hub's callbacks). Call it from a
 * coroutine of the hub that will serve. */
void http__start(struct http_server *srv, const struct http_config *cfg,
                 const int *listen_fds, unsigned nlisten);

/* Stops accepting (closing the listeners), lets in-flight requests finish
 * within grace_ms (0: none), then cancels what is left. Returns when every
 * connection is closed and the access log is flushed; http__server_fini
 * frees the rest. Call it from a coroutine of the serving hub. */
void http__stop(struct http_server *srv, int64_t grace_ms);

/* Points the access log at path again (a fresh file after logrotate moved
 * the old one), keeping its FILE and fd number. No-op without a log file
 * or a path. */
void http__reopen_log(struct http_server *srv, const char *path);

#endif
