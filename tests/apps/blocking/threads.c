/*
 * threads.c - off the hub, blocking calls really block: on an offload
 * thread (co_offload) and on a thread the app starts itself. A sleep takes
 * its full time, and a read on a socket a coroutine parked on (which the
 * hooks may have made O_NONBLOCK in the kernel) waits for data on this
 * thread instead of failing with EAGAIN.
 *
 * "Waits for data" is shown without timing: a watcher thread writes the
 * byte only once it sees the reader asleep in the kernel
 * (/proc/self/task/TID/stat says S), so a read that returned at once
 * returns before anything was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "blocking.h"

/* How long the watcher waits for the reader to fall asleep. */
#define BK_WATCH_NS (10LL * 1000000000LL)

int bk_parked_pair(int sv[2], int ms, struct bk_out *o)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        bk_fail(o, "socketpair: %s", bk_errname(errno));
        return -1;
    }
    struct bk_later l;
    if (bk_later_start(&l, sv[1], "a", 1, ms) < 0) {
        bk_fail(o, "thread: %s", bk_errname(errno));
        bk_close(&sv[0]);
        bk_close(&sv[1]);
        return -1;
    }
    char c = 0;
    errno = 0;
    ssize_t r = recv(sv[0], &c, 1, 0);
    int err = errno;
    bk_later_join(&l);
    if (r != 1 || c != 'a') {
        bk_fail(o, "blocking recv on a fresh socket pair: %zd errno=%s", r,
                bk_errname(err));
        bk_close(&sv[0]);
        bk_close(&sv[1]);
        return -1;
    }
    return 0;
}

/* The reader's state letter from /proc/self/task/TID/stat, or 0. */
static char bk_task_state(pid_t tid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *p = ok ? strrchr(line, ')') : NULL;
    return p && p[1] == ' ' ? p[2] : 0;
}

struct bk_watch {
    pthread_t th;
    pid_t reader;
    int fd;
    int reading, done; /* set by the reader (atomics) */
    int saw_sleep;     /* the byte went out once the reader slept */
};

static void *bk_watch_main(void *arg)
{
    struct bk_watch *w = arg;
    int64_t end = bk_now_ns() + BK_WATCH_NS;
    struct timespec ms1 = {0, 1000000};
    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE) && bk_now_ns() < end) {
        if (__atomic_load_n(&w->reading, __ATOMIC_ACQUIRE) &&
            bk_task_state(w->reader) == 'S') {
            w->saw_sleep = 1;
            break;
        }
        nanosleep(&ms1, NULL);
    }
    if (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
        ssize_t n = write(w->fd, "b", 1); /* the reader must not hang */
        (void)n;
    }
    return NULL;
}

static void bk_check_sleeps(const char *what, int ms, struct bk_out *o)
{
    int64_t want = (int64_t)ms * 1000000LL, t0 = bk_now_ns(), t1;
    int rc;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    errno = 0;
    if (strcmp(what, "usleep") == 0) {
        rc = usleep((useconds_t)ms * 1000U);
    } else if (strcmp(what, "nanosleep") == 0) {
        rc = nanosleep(&ts, NULL);
    } else {
        int p[2];
        if (pipe(p) < 0) {
            bk_fail(o, "pipe: %s", bk_errname(errno));
            return;
        }
        struct pollfd pf = {p[0], POLLIN, 0};
        rc = poll(&pf, 1, ms);
        close(p[0]);
        close(p[1]);
    }
    int err = errno;
    t1 = bk_now_ns();
    bk_say(o, "thread %s(%d ms) = %d errno=%s after %lld us\n", what, ms, rc,
           bk_errname(err), (long long)(t1 - t0) / 1000);
    /* a sleep cannot end early: that is a wrong result, not a slow one */
    if (rc != 0 || t1 - t0 < want)
        bk_fail(o, "%s(%d ms) on a thread: %d errno=%s, returned after %lld us",
                what, ms, rc, bk_errname(err), (long long)(t1 - t0) / 1000);
}

void bk_thread_checks(int sock, int peer, int ms, struct bk_out *o)
{
    bk_check_sleeps("usleep", ms, o);
    bk_check_sleeps("nanosleep", ms, o);
    bk_check_sleeps("poll", ms, o);

    int fl = fcntl(sock, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        bk_fail(o, "F_GETFL on a thread says 0x%x: O_NONBLOCK never set", fl);

    struct bk_watch w = {.reader = gettid(), .fd = peer};
    if (pthread_create(&w.th, NULL, bk_watch_main, &w) != 0) {
        bk_fail(o, "pthread_create");
        return;
    }
    char c = 0;
    __atomic_store_n(&w.reading, 1, __ATOMIC_RELEASE);
    errno = 0;
    ssize_t r = read(sock, &c, 1);
    int err = errno;
    __atomic_store_n(&w.done, 1, __ATOMIC_RELEASE);
    pthread_join(w.th, NULL);
    bk_say(o, "thread read = %zd errno=%s, watcher saw it asleep: %d\n", r,
           bk_errname(err), w.saw_sleep);
    if (r != 1 || c != 'b')
        bk_fail(o,
                "a blocking read on a thread, on a socket a coroutine "
                "parked on: %zd errno=%s (want 1 byte once written)",
                r, bk_errname(err));
    else if (!w.saw_sleep)
        bk_fail(o, "the reader never slept in the kernel (state stayed not S)");
}

/* ---- op=offload -------------------------------------------------------- */

struct bk_job {
    int sock, peer, ms;
    struct bk_out out;
};

static void bk_job_run(void *arg)
{
    struct bk_job *job = arg;
    bk_thread_checks(job->sock, job->peer, job->ms, &job->out);
}

static void bk_merge(struct bk_out *o, struct bk_out *from)
{
    if (from->buf)
        bk_say(o, "%.*s", (int)from->len, from->buf);
    o->bad += from->bad;
    free(from->buf);
}

int bk_offload(const struct bk_args *a, struct bk_out *o)
{
    int sv[2];
    if (bk_parked_pair(sv, a->ms, o) < 0)
        return -1;
    /* no deadline, nobody cancels this request: the job may live here */
    struct bk_job job = {.sock = sv[0], .peer = sv[1], .ms = a->ms};
    if (co_offload(bk_job_run, &job, NULL, -1) < 0) {
        bk_fail(o, "co_offload: %s", bk_errname(errno));
    } else {
        bk_merge(o, &job.out);
    }
    bk_close(&sv[0]);
    bk_close(&sv[1]);
    if (!o->bad)
        bk_say(o, "ok offload\n");
    return o->bad ? -1 : 0;
}

/* ---- op=thread: a thread the app starts with pthread_create ------------ */

struct bk_app_thread {
    int sock, peer, ms, done_fd;
    struct bk_out out;
};

static void *bk_app_thread_main(void *arg)
{
    struct bk_app_thread *t = arg;
    bk_thread_checks(t->sock, t->peer, t->ms, &t->out);
    ssize_t n = write(t->done_fd, "d", 1);
    (void)n;
    return NULL;
}

int bk_thread(const struct bk_args *a, struct bk_out *o)
{
    int sv[2], done[2];
    if (bk_parked_pair(sv, a->ms, o) < 0)
        return -1;
    if (pipe(done) < 0) {
        bk_fail(o, "pipe: %s", bk_errname(errno));
        bk_close(&sv[0]);
        bk_close(&sv[1]);
        return -1;
    }
    struct bk_app_thread t = {
        .sock = sv[0], .peer = sv[1], .ms = a->ms, .done_fd = done[1]};
    pthread_t th;
    if (pthread_create(&th, NULL, bk_app_thread_main, &t) != 0) {
        bk_fail(o, "pthread_create");
    } else {
        /* the coroutine waits for the thread with a blocking read (parks) */
        char c = 0;
        errno = 0;
        ssize_t r = read(done[0], &c, 1);
        if (r != 1 || c != 'd')
            bk_fail(o, "read of the thread's done byte: %zd errno=%s", r,
                    bk_errname(errno));
        pthread_join(th, NULL);
        bk_merge(o, &t.out);
    }
    bk_close(&done[0]);
    bk_close(&done[1]);
    bk_close(&sv[0]);
    bk_close(&sv[1]);
    if (!o->bad)
        bk_say(o, "ok thread\n");
    return o->bad ? -1 : 0;
}
