/*
 * stream.h - gevent's StreamServer for one hub: plain TCP or unix
 * listeners whose every connection runs a handler in its own coroutine.
 *
 * The layer beside http/: it knows nothing of HTTP or of dlopen. A
 * listener takes a listening socket (which the master owns and shares with
 * every worker, so it outlives reloads), accepts while it has room
 * (max_conns per listener, else the rest wait in the kernel's backlog),
 * pauses accepting for a moment when out of fds, and spawns one detached
 * coroutine per connection. A drain stops accepting at once and gives the
 * live connections a grace period, then cancels them (their waits fail
 * with ECANCELED) and waits for their handlers to return.
 */
#ifndef COSERVE_STREAM_STREAM_H
#define COSERVE_STREAM_STREAM_H

#include <stdint.h>

#include "coserve.h"
#include "core/list.h"

struct stream_config {
    const char *name;         /* for logs and crash reports (kept) */
    co_stream_fn handler;     /* runs once per connection */
    unsigned max_conns;       /* open connections per listener */
    int64_t write_timeout_ms; /* a plain write without progress fails */
};

/* Every listener of one hub; the caller owns it (one per worker). */
struct stream_set {
    struct list listeners;
    unsigned open;    /* connections, all listeners */
    int draining;     /* set by stream__drain */
    int64_t deadline; /* the drain's end (monotonic ms; -1: none) */
    co_event_t *idle; /* set when open drops to 0 while draining */
};

void stream__set_init(struct stream_set *set);

/* On the calling hub: accepts from fd (a listening socket, non-blocking),
 * running cfg->handler per connection. The set owns fd from now on (it
 * closes it, also on failure). Returns 0, or -1 with errno ENOMEM. */
int stream__listen(struct stream_set *set, int fd,
                   const struct stream_config *cfg);

/* Stops accepting at once (closes every listener) and lets the open
 * connections run until grace_ms from now (-1: no end). Idempotent. */
void stream__drain(struct stream_set *set, int64_t grace_ms);

/* In a coroutine: waits until every connection has ended or the drain's
 * deadline passed, then cancels the rest and waits for their handlers to
 * return; frees the listeners. Drains first (grace 0) if nobody did. */
void stream__finish(struct stream_set *set);

#endif
