/*
 * bus - one topic's messages to every worker of this server.
 *
 * Workers are separate processes, so an app that must reach every client
 * (a chat room, live notes) needs a way across them. Each worker binds a
 * unix datagram socket in a directory named after the master's pid
 * (TMPDIR/coserve-bus-PID/TOPIC.WORKERPID); bus_publish sends a message to
 * every socket there, this worker's own included, and a coroutine per
 * worker reads its socket into a ring of recent messages that local
 * clients follow by sequence number. Why this and not a hub in the
 * master: no change to the process model, no single process every message
 * goes through, and a worker that dies only leaves a socket file that the
 * next publish removes (the send is refused). Delivery is best effort, as
 * for a chat: a client that falls more than BUS_RING messages behind
 * skips ahead and is told so.
 */
#ifndef APPS_BUS_H
#define APPS_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The largest message, and how many recent ones each worker keeps. */
#define BUS_MSG_MAX 8192
#define BUS_RING 256

/* Names the topic; call from the app's init (per worker, before serving).
 * Returns 0, or -1 with ENAMETOOLONG. */
int bus_init(const char *topic);

/* Joins the bus on first use (binds the socket, starts the reader
 * coroutine, detached): call from a handler. Returns 0, or -1 with errno. */
int bus_start(void);

/* Sends data[0..len) to every worker, this one included. Returns 0, or -1
 * with EMSGSIZE (over BUS_MSG_MAX) or errno. */
int bus_publish(const void *data, size_t len);

/* The sequence number the next message received will get. */
uint64_t bus_next(void);

/* Message seq: sets *data (the bus's, valid until the caller next waits)
 * and returns its length; -1 with EAGAIN (not yet come) or ENOENT (gone
 * from the ring: skip to bus_next() - BUS_RING or later). */
ssize_t bus_get(uint64_t seq, const char **data);

/* Waits until message seq has come (bus_next() > seq). Returns 0, or -1
 * with ETIMEDOUT or ECANCELED. */
int bus_wait(uint64_t seq, int64_t deadline);

/* Leaves the bus (the app's fini): removes this worker's socket. */
void bus_fini(void);

#endif
