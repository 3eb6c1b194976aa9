/*
 * logbuf.h - a log that never blocks its writers.
 *
 * Lines go into a bounded ring and a thread of its own writes them to the
 * fd. A hub appending its access-log lines costs a memcpy under a mutex the
 * writer holds only to move two counters; when the fd stalls (a pipe nobody
 * reads, a full disk, a stopped terminal) the ring fills and further lines
 * are dropped and counted, never the server.
 */
#ifndef COSERVE_CORE_LOGBUF_H
#define COSERVE_CORE_LOGBUF_H

#include <stddef.h>
#include <stdint.h>

struct logbuf;

/* Starts a writer thread for fd (not owned: the caller closes it) with a
 * ring of cap bytes; name (static) names the log in the error log's
 * reports of dropped lines, at most one a second. Returns NULL with errno
 * (ENOMEM, or pthread's). */
struct logbuf *logbuf__start(int fd, size_t cap, const char *name);

/* Queues len bytes of whole lines, all or nothing. Returns 0, or -1 when
 * the ring has no room: the lines are dropped and counted. Any thread. */
int logbuf__append(struct logbuf *b, const char *data, size_t len);

/* Lines dropped so far. */
uint64_t logbuf__dropped(struct logbuf *b);

/* Lets the writer drain for up to wait_ms, then stops it (a write stuck
 * longer is abandoned) and frees b. */
void logbuf__stop(struct logbuf *b, int64_t wait_ms);

#endif
