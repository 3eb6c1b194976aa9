/*
 * errcap.h - what apps write to stderr, as error log lines.
 *
 * An app's fprintf(stderr, ...), perror() or write(2, ...) becomes
 * "TIME coserve[PID] warn: app NAME: text", one line per line written:
 * the stderr FILE is replaced by a stream whose write function runs in
 * the writer's own context, and the write() hook sends a coroutine's
 * writes to fd 2 the same way. The source is the part before ": " of the
 * description of the running coroutine (or of its nearest described
 * ancestor: a child it spawned), which the layer running it sets ("app
 * hello: GET /x" gives "app hello"); with no description (the hub, an
 * offload thread, the worker's start) it is "stderr". The level is warn:
 * stderr is where programs report problems, and the server cannot tell a
 * debug print from an error report, so it keeps both at the default level
 * and at --log-level warn.
 *
 * Partial lines wait for their end, so "a" then "b\n" is one line; a
 * partial line is ended early when another source writes (never joined
 * with someone else's text), when it reaches ERRCAP_LINE bytes, or at
 * exit. The error log's own lines go to log__fd, a copy of fd 2, and are
 * not captured.
 */
#ifndef COSERVE_CORE_ERRCAP_H
#define COSERVE_CORE_ERRCAP_H

#include <stddef.h>
#include <sys/types.h>

#define ERRCAP_LINE 2048

/* Non-zero once errcap__start succeeded (the write hook looks). */
extern int errcap__on;

/* In a worker, before any app code runs: moves the error log to a copy of
 * fd 2 (log__fd) and replaces stderr. Returns 0, or -1 with errno (then
 * stderr stays as it was). */
int errcap__start(void);

/* The write hook's path for fd 2 in a coroutine: n bytes of app output.
 * Never waits on the hub; returns n. */
ssize_t errcap__write(const void *buf, size_t n);

#endif
