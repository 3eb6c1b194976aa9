/*
 * listen.h - the front end's listening sockets (listen.c): opening one,
 * naming it, and turning accepting on and off.
 */
#ifndef COSERVE_HTTP_LISTEN_H
#define COSERVE_HTTP_LISTEN_H

#include <stddef.h>

struct http_listener;
struct http_server;

/* Opens a listening socket for "HOST:PORT", "[V6]:PORT" or "unix:PATH",
 * non-blocking, with SO_REUSEADDR and a backlog of SOMAXCONN. Returns the
 * fd, or -1 with a message in err. */
int listen__open(const char *spec, char *err, size_t errlen);
/* Fills l's family, address text and port from its fd. */
void listen__local_addr(struct http_listener *l);
/* Logs "serving on http://127.0.0.1:8080, unix:/run/coserve.sock": one
 * line per worker, whatever the number of listeners. */
void listen__log_serving(const struct http_server *srv);
/* Starts or stops every listener's accept watcher. */
void listen__accepting(struct http_server *srv, int on);
/* Starts accepting again on every listener, unless draining or full (a
 * closed connection freed a slot and an fd). */
void listen__resume(struct http_server *srv);

#endif
