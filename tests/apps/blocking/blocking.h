/*
 * blocking.h - the blocking test app's shared pieces (see blocking.c).
 *
 * Everything under test here is plain blocking C: usleep, poll, read,
 * connect, getaddrinfo, libcurl... The app never uses coserve's co_* I/O for
 * what it tests; it uses coserve.h only to read the query and answer.
 */
#ifndef COSERVE_TESTS_APPS_BLOCKING_H
#define COSERVE_TESTS_APPS_BLOCKING_H

#include <stddef.h>
#include <stdint.h>

#include "coserve.h"

/* A response body being built: text appended with bk_say; `bad` counts the
 * failures said with bk_fail (the handler answers 500 when bad > 0). */
struct bk_out {
    char *buf;
    size_t len, cap;
    int bad;
};

/* What one request asked for. */
struct bk_args {
    const char *op;
    int ms;    /* the unit of waiting, default 20 */
    int until; /* repeat the op until this many requests overlapped */
    int via;   /* which flavour of a call (read/readv/recv/...) */
    char what[32];
    char group[32];
    int port; /* the server's own port (for the clients) */
};

void bk_say(struct bk_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends "FAIL: ..." and counts it. */
void bk_fail(struct bk_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "EAGAIN" for EAGAIN, "0" for 0. */
const char *bk_errname(int err);
/* Monotonic time in nanoseconds. */
int64_t bk_now_ns(void);

/* ---- ops.c: one round of a blocking op; 0 ok, -1 failed (said in o) ---- */

typedef int (*bk_op_fn)(const struct bk_args *a, struct bk_out *o);

/* The op named name, or NULL. */
bk_op_fn bk_op_find(const char *name);

/* ---- edges.c: errno/result parity cases, run in the coroutine and on a
 * plain thread ---- */

/* Runs every case of group (time, poll, select, fd, nonblock, net, names,
 * timeo); returns the number of cases, -1 for an unknown group. */
int bk_edges(const char *group, struct bk_out *o);

/* ---- threads.c: offload and app threads really block ---- */

int bk_offload(const struct bk_args *a, struct bk_out *o);
int bk_thread(const struct bk_args *a, struct bk_out *o);

/* The checks both of them run on a non-hub thread: sleeps take their full
 * time, a socket the coroutine parked on blocks on this thread until data
 * comes. sock is such a socket (its peer is peer). */
void bk_thread_checks(int sock, int peer, int ms, struct bk_out *o);

/* Makes a connected socketpair on which the calling coroutine has parked
 * once (a blocking recv that data from a thread ended), so the hooks had
 * every reason to make it O_NONBLOCK behind the user's back. */
int bk_parked_pair(int sv[2], int ms, struct bk_out *o);

/* A plain thread that writes len bytes of data (at most 8) to fd after ms:
 * the other side of a blocking read. Join it before closing fd. */
struct bk_later {
    unsigned long th;
    int fd, ms, started;
    char data[8];
    size_t len;
    long rc;
    int err;
};
int bk_later_start(struct bk_later *l, int fd, const void *data, size_t len,
                   int ms);
void bk_later_join(struct bk_later *l);

/* Closes fd if it is >= 0 and sets it to -1. */
void bk_close(int *fd);

#endif
