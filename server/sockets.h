/*
 * sockets.h - the stream apps' listening sockets, held by the master.
 *
 * Which sockets to bind is written in the apps' descriptors (.listen), and
 * the master never loads apps: reading a descriptor means dlopen, which
 * runs the module's constructors, and a crash or a hang there must not
 * take the supervisor down. So a worker, once it has loaded its apps, asks
 * the master for each stream app's socket over the socket pair it already
 * has for its "ready" byte (SOCK_SEQPACKET: one message per request). The
 * master binds the address the first time it is asked and keeps the
 * socket for its own lifetime, handing every worker of every generation a
 * copy (SCM_RIGHTS): like the HTTP listener, it outlives workers and
 * reloads, so a reload never drops a queued connection. A socket no worker
 * of the current generation asked for (its app was removed, or moved to
 * another address) is closed once a reload completes; all are closed when
 * a stop begins, as the HTTP one is.
 *
 * The messages: worker "L<spec>"; master "0" with the fd attached, or
 * "E<reason>"; worker "1" once it serves (master.c).
 */
#ifndef COSERVE_SOCKETS_H
#define COSERVE_SOCKETS_H

#include <stddef.h>

/* Binds spec ("HOST:PORT", "unix:PATH") and listens; returns the fd
 * (non-blocking, close-on-exec), or -1 with a message in err. */
typedef int (*sockets_listen_fn)(const char *spec, char *err, size_t errlen);

/* Master: answers one "L<spec>" request (spec is the text after the L, NUL
 * terminated) received on ctl from a worker of `generation`, binding spec
 * with listen if no socket has it yet. Generation 0 (a worker told to stop)
 * and any request after sockets__close_all() are refused. Returns 0, or -1
 * if the answer could not be sent. */
int sockets__answer(int ctl, const char *spec, unsigned generation,
                    sockets_listen_fn listen);

/* Master: closes the sockets no worker of `generation` asked for. */
void sockets__prune(unsigned generation);

/* Master: closes every socket (a stop begins), removing unix socket files. */
void sockets__close_all(void);

/* A new worker, right after fork: closes its inherited copies (it asks for
 * the sockets its apps want; a copy it did not ask for would keep a socket
 * open after the master closed it). Removes no file. */
void sockets__close_inherited(void);

/* Worker: asks the master, over ctl, for a listening socket bound to spec.
 * Returns the fd (the caller's), or -1 with the reason in err. Blocks until
 * the master answers. */
int sockets__ask(int ctl, const char *spec, char *err, size_t errlen);

/* The message type byte of a request (what master.c dispatches on). */
#define SOCKETS_ASK 'L'

#endif
