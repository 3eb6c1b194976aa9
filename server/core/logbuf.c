/* A log that never blocks its writers (see logbuf.h). */
#include "core/logbuf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define LOGBUF_REPORT_MS 1000

struct logbuf {
    int fd;
    const char *name;
    char *ring;
    size_t cap;
    /* Byte counters that only grow: the queued bytes are [head, tail).
     * Appenders write past tail, the writer reads from head, each outside
     * the lock, which guards only the counters. */
    uint64_t head, tail;
    pthread_mutex_t lock;
    pthread_cond_t more;    /* tail moved, or stop */
    pthread_cond_t drained; /* head caught up with tail */
    int stop;
    uint64_t dropped, reported;
    int64_t reported_ms;
    pthread_t thread;
};

static int64_t logbuf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Called with the lock held: the count of lines dropped since the last
 * report, if one is due (once a second at most); 0 otherwise. */
static uint64_t logbuf_due(struct logbuf *b)
{
    int64_t now = logbuf_now_ms();
    if (b->dropped == b->reported || now - b->reported_ms < LOGBUF_REPORT_MS)
        return 0;
    uint64_t n = b->dropped - b->reported;
    b->reported = b->dropped;
    b->reported_ms = now;
    return n;
}

/* Reports drops to the error log (another fd), without the lock: the
 * error log may be slow too. */
static void logbuf_report(struct logbuf *b, uint64_t n)
{
    if (n)
        log_warn("%s: %llu lines dropped: its output does not keep up", b->name,
                 (unsigned long long)n);
}

/* Lines in the queued bytes, with the lock held. */
static uint64_t logbuf_queued_lines(struct logbuf *b)
{
    uint64_t n = 0;
    for (uint64_t i = b->head; i < b->tail; i++)
        n += b->ring[i % b->cap] == '\n';
    return n;
}

static void *logbuf_main(void *arg)
{
    struct logbuf *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        uint64_t due = logbuf_due(b);
        if (due) {
            pthread_mutex_unlock(&b->lock);
            logbuf_report(b, due);
            pthread_mutex_lock(&b->lock);
            continue;
        }
        if (b->head == b->tail) {
            pthread_cond_broadcast(&b->drained);
            if (b->stop)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1; /* to report drops even when idle */
            pthread_cond_timedwait(&b->more, &b->lock, &until);
            continue;
        }
        /* the queued bytes up to the ring's end: one write */
        size_t at = (size_t)(b->head % b->cap);
        size_t len = (size_t)(b->tail - b->head);
        if (len > b->cap - at)
            len = b->cap - at;
        pthread_mutex_unlock(&b->lock);
        ssize_t w = write(b->fd, b->ring + at, len);
        int err = errno;
        pthread_mutex_lock(&b->lock);
        if (w > 0)
            b->head += (uint64_t)w;
        else if (w < 0 && err != EINTR && err != EAGAIN)
            b->head += len; /* a broken fd: these are lost, not retried */
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

struct logbuf *logbuf__start(int fd, size_t cap, const char *name)
{
    struct logbuf *b = calloc(1, sizeof *b);
    if (!b || !(b->ring = malloc(cap))) {
        free(b);
        errno = ENOMEM;
        return NULL;
    }
    b->fd = fd;
    b->name = name;
    b->cap = cap;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->more, NULL);
    pthread_cond_init(&b->drained, NULL);
    /* the writer takes no signal: the hub's handlers stay the hub's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&b->thread, NULL, logbuf_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        free(b->ring);
        free(b);
        errno = rc;
        return NULL;
    }
    return b;
}

static uint64_t logbuf_lines(const char *data, size_t len)
{
    uint64_t n = 0;
    for (const char *p = data; (p = memchr(p, '\n', len - (size_t)(p - data)));
         p++)
        n++;
    return n ? n : 1;
}

int logbuf__append(struct logbuf *b, const char *data, size_t len)
{
    pthread_mutex_lock(&b->lock);
    if (len > b->cap - (size_t)(b->tail - b->head)) {
        /* reported from here: the writer may be stuck in write() */
        b->dropped += logbuf_lines(data, len);
        uint64_t due = logbuf_due(b);
        pthread_mutex_unlock(&b->lock);
        logbuf_report(b, due);
        return -1;
    }
    size_t at = (size_t)(b->tail % b->cap);
    size_t first = len < b->cap - at ? len : b->cap - at;
    memcpy(b->ring + at, data, first);
    memcpy(b->ring, data + first, len - first);
    int was_empty = b->head == b->tail;
    b->tail += len;
    if (was_empty)
        pthread_cond_signal(&b->more);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

uint64_t logbuf__dropped(struct logbuf *b)
{
    pthread_mutex_lock(&b->lock);
    uint64_t n = b->dropped;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void logbuf__stop(struct logbuf *b, int64_t wait_ms)
{
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_signal(&b->more);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int stuck = 0;
    while (b->head != b->tail && !stuck)
        stuck =
            pthread_cond_timedwait(&b->drained, &b->lock, &until) == ETIMEDOUT;
    uint64_t due = 0;
    if (stuck) {
        b->dropped += logbuf_queued_lines(b);
        b->reported_ms = 0;
        due = logbuf_due(b);
    }
    pthread_mutex_unlock(&b->lock);
    logbuf_report(b, due);
    /* a writer still in write() on a stalled fd: write is a cancellation
     * point, so this ends it */
    if (stuck)
        pthread_cancel(b->thread);
    pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->more);
    pthread_cond_destroy(&b->drained);
    free(b->ring);
    free(b);
}
