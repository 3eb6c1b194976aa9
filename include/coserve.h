/*
 * coserve.h - the one header a coserve app includes.
 *
 * coserve runs every request in a stackful coroutine scheduled by a per-thread
 * hub (a libev loop). Everything here that can wait switches to the hub and
 * back, so a coroutine never blocks the thread. Conventions, for every call:
 *
 *   - Errors: -1 (or NULL) and errno. ETIMEDOUT when the deadline passed,
 *     ECANCELED when the calling coroutine was cancelled, the system call's
 *     own errno otherwise.
 *   - Deadlines: absolute monotonic milliseconds (see co_now()), -1 for none.
 *   - Threads: the cooperative calls belong to the hub thread that runs the
 *     coroutine. Calling one from any other thread (an offload worker, say)
 *     aborts with a message naming the call: it is a bug, not an error.
 *   - Ownership: said per call. Handles (co_t, co_chan_t, ...) are opaque, so
 *     the server can change them without rebuilding apps.
 */
#ifndef COSERVE_H
#define COSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The server is built with hidden visibility; everything declared here is
 * what it exports to apps (see server/coserve.dynlist). */
#pragma GCC visibility push(default)

/* Bumped whenever a struct or a call in this header changes incompatibly.
 * 2 added the stream fields at the end of struct co_app; the server still
 * loads apps built for 1 (they have no stream). */
#define COSERVE_ABI_VERSION 2

/* fd readiness for co_wait_fd(). */
#define CO_READABLE 1
#define CO_WRITABLE 2

typedef struct co co_t;
typedef struct co_event co_event_t;
typedef struct co_chan co_chan_t;
typedef struct co_sem co_sem_t;
typedef struct co_pool co_pool_t;
typedef struct co_pool_iter co_pool_iter_t;
typedef struct co_lock co_lock_t;
typedef struct co_result co_result_t;
typedef struct co_queue co_queue_t;

/* A coroutine body: its return value is what co_join() hands back. */
typedef void *(*co_fn)(void *arg);
/* Work for an offload thread, or a per-thread hook. */
typedef void (*co_work_fn)(void *arg);
/* One item of co_pool_map() / co_pool_imap_unordered(): stores its result
 * in *result and returns 0, or returns -1 with errno, which is reported
 * for that item alone. */
typedef int (*co_task_fn)(void *arg, void **result);

/* ---- time ------------------------------------------------------------- */

/* Monotonic clock in milliseconds: the time base of every deadline. */
int64_t co_now(void);

/* The deadline `ms` milliseconds from now; -1 (no deadline) if ms < 0. */
int64_t co_deadline(int64_t ms);

/* ---- running a hub ---------------------------------------------------- */

/* Makes the calling thread a hub, runs fn(arg) as its first coroutine and
 * serves until fn returns; coroutines still alive then are cancelled and
 * joined. Stores fn's result in *result when result is not NULL. Returns 0,
 * or -1 with errno (ENOMEM: no stack; EBUSY: this thread already runs a hub).
 */
int co_run(co_fn fn, void *arg, void **result);

/* ---- coroutines ------------------------------------------------------- */

/* Starts fn(arg) in a new coroutine; it first runs when the caller next
 * waits or yields. The new coroutine is a child of the caller: when the caller
 * returns, children it did not join or detach are cancelled and joined.
 * Returns a handle the caller must pass to co_join() or co_detach() (or leave
 * to the parent's end), or NULL with errno ENOMEM (no stack or memory). */
co_t *co_spawn(co_fn fn, void *arg);

/* gevent.spawn_later: co_spawn(), but fn(arg) starts delay_ms milliseconds
 * from now; until then the coroutine waits in co_sleep(). The same handle
 * rules apply (join, detach, or the parent's end). Cancelled before it
 * starts, fn never runs and co_join's result is NULL. Returns the handle,
 * or NULL with EINVAL (delay_ms < 0, fn NULL) or ENOMEM. */
co_t *co_spawn_later(int64_t delay_ms, co_fn fn, void *arg);

/* Waits until co has returned, stores its result in *result (if result is not
 * NULL) and frees co. Returns 0; -1 with ETIMEDOUT or ECANCELED, and co is
 * still alive and joinable. Joining oneself fails with EDEADLK. */
int co_join(co_t *co, void **result, int64_t deadline);

/* Joins every non-NULL coroutine of cos[0..n) (results are dropped); each one
 * joined is set to NULL, so a timed-out call can be repeated. Returns 0, or -1
 * with ETIMEDOUT or ECANCELED. */
int co_join_all(co_t **cos, size_t n, int64_t deadline);

/* Lets co run on its own: it is freed when it returns and nobody joins it. */
void co_detach(co_t *co);

/* Cancels co: its current wait (if any) and every later one fail with
 * ECANCELED until it returns. co keeps running until it returns; cancelling
 * a finished coroutine does nothing. */
void co_cancel(co_t *co);

/* The running coroutine, or NULL in the hub's own context and on threads
 * without a hub (so code can ask whether it runs in a coroutine). */
co_t *co_current(void);

/* Non-zero if the running coroutine has been cancelled. */
int co_cancelled(void);

/* Names co for logs and crash reports (copied, truncated to 31 bytes). */
void co_set_name(co_t *co, const char *name);

/* co's name; "main" for co_run's coroutine, "co-N" unless named. The string
 * belongs to co. */
const char *co_name(const co_t *co);

/* Lets every other ready coroutine run, then resumes (gevent.sleep(0)).
 * Returns 0, or -1 with ECANCELED. */
int co_yield_now(void);

#ifndef __cplusplus
/* The name co_yield_now had before: a keyword in C++20, so C only. The
 * server still exports a co_yield symbol, for apps built before. */
#define co_yield co_yield_now
#endif

/* Waits until the deadline. Returns 0 then, or -1 with ECANCELED, or with
 * ETIMEDOUT when a co_timeout scope's deadline came first. */
int co_sleep(int64_t deadline);

/* ---- outcomes: how a coroutine finished (gevent's Greenlet) ------------ */

/* Longest co_fail() message kept, with its NUL. */
#define CO_MSG_MAX 64

/* How a coroutine finished, from co_join_outcome(). */
struct co_outcome {
    void *value;          /* what its body returned */
    int err;              /* 0: success; co_fail's errno; ECANCELED */
    char msg[CO_MSG_MAX]; /* co_fail's message, "" if none */
};

/* Marks the running coroutine as failed with err (an errno value; <= 0
 * becomes EINVAL) and an optional short message (copied, truncated to
 * CO_MSG_MAX - 1 bytes; NULL: none), gevent's exception for C. The body
 * still returns as usual: co_fail returns NULL so that it can end with
 * `return co_fail(ENOENT, "no such user");`. A later call replaces it. */
void *co_fail(int err, const char *msg);

/* Non-zero once co has finished, joined or not (gevent's ready()). co must
 * not have been joined yet, nor be a detached coroutine that finished. */
int co_ready(const co_t *co);

/* Non-zero once co has finished without an error: it did not co_fail and
 * was not cancelled before its body returned. Unlike gevent, where a
 * killed greenlet counts as successful, a cancelled one has ECANCELED. */
int co_successful(const co_t *co);

/* The errno co finished with: 0 while it runs or if it succeeded,
 * co_fail's err, or ECANCELED (cancelled before its body returned, and no
 * co_fail). If msg is not NULL, *msg is co_fail's message ("" if none), a
 * string belonging to co until it is joined. */
int co_error(const co_t *co, const char **msg);

/* co_join() that also says how co finished: fills *out (if not NULL) and
 * frees co. Returns 0 once co has finished, whatever its outcome; -1 with
 * ETIMEDOUT or ECANCELED (co still alive and joinable), EDEADLK (co is the
 * caller) or EINVAL (co is detached, or another coroutine joins it). */
int co_join_outcome(co_t *co, struct co_outcome *out, int64_t deadline);

/* A callback run when a coroutine has finished (co_link). */
typedef void (*co_link_fn)(co_t *co, void *arg);

/* Calls fn(co, arg) once co has finished (gevent's rawlink): by the hub,
 * outside any coroutine, right after co's body returned and its children
 * were reaped, before any coroutine joining or waiting for co resumes, in
 * the order the links were made. fn must not wait (a call that waits
 * aborts there); it may read co's outcome, set an event, co_cancel, or
 * co_spawn (that coroutine has no parent: join or detach it). fn must not
 * join, detach or free co. If co has already finished, fn runs at once, in
 * the caller. Returns 0, or -1 with ENOMEM. */
int co_link(co_t *co, co_link_fn fn, void *arg);

/* Removes the earliest co_link of fn with arg that has not run yet.
 * Returns 0, or -1 with ENOENT (no such link). */
int co_unlink(co_t *co, co_link_fn fn, void *arg);

/* ---- timeout scopes (gevent.Timeout) and shields ----------------------- */

/* A deadline over a block of calls in one coroutine. The caller owns it
 * (on its stack, usually); the fields are private. */
typedef struct co_timeout {
    int64_t deadline;
    unsigned shield;
    struct co_timeout *next;
} co_timeout_t;
typedef co_timeout_t co_shield_t;

/* Opens a scope in the running coroutine: until co_timeout_end(t), every
 * wait (the calls here, and the hooked libc calls) ends at the deadline at
 * the latest, failing with ETIMEDOUT (a hooked call with what it returns
 * for a timeout). Scopes nest: a wait obeys the earliest deadline of the
 * scopes open; an expired scope disturbs nothing once ended, and the
 * coroutine is not cancelled. Unlike gevent.Timeout, nothing is thrown:
 * a call that can finish without waiting still succeeds after the
 * deadline, and code that never waits is never interrupted. -1: a scope
 * without a deadline. */
void co_timeout_begin(co_timeout_t *t, int64_t deadline);

/* Closes scope t (ending an outer scope before an inner one is allowed;
 * ending one twice does nothing). Returns non-zero if t's own deadline
 * had passed, so t (not an outer scope) may be what failed the waits. */
int co_timeout_end(co_timeout_t *t);

/* Non-zero if t's deadline has passed: after a wait failed with
 * ETIMEDOUT, says whether t's deadline (rather than another's) was due. */
int co_timeout_expired(const co_timeout_t *t);

/* Opens a shield, for cleanup a cancel must not cut short (closing a
 * database connection politely after co_cancel or a request timeout):
 * until co_shield_end(s), a cancel is held back (waits do not fail with
 * ECANCELED; co_cancelled() still says 1) and the timeout scopes opened
 * outside the shield do not apply; instead deadline bounds every wait
 * (ETIMEDOUT), and timeout scopes opened inside still nest. Once the last
 * shield ends, a held-back cancel applies again: the next wait fails with
 * ECANCELED. Returns 0, or -1 with EINVAL if deadline is -1 (cleanup must
 * be bounded); co_shield_end() on a shield that did not start does
 * nothing. */
int co_shield_begin(co_shield_t *s, int64_t deadline);

/* Closes shield s. Returns non-zero if its deadline had passed. */
int co_shield_end(co_shield_t *s);

/* ---- cooperative fd I/O (fds must be O_NONBLOCK) ---------------------- */

/* Waits until fd is readable or writable (CO_READABLE | CO_WRITABLE).
 * Returns 0 or -1 (ETIMEDOUT, ECANCELED). Only one coroutine may wait on
 * one fd for one direction at a time. */
int co_wait_fd(int fd, int events, int64_t deadline);

/* Reads up to n bytes, waiting until some arrive. Returns the count, 0 at
 * end of file, or -1 with errno. */
ssize_t co_read(int fd, void *buf, size_t n, int64_t deadline);

/* Writes all n bytes. Returns 0, or -1 with errno (part may have been
 * written). */
int co_write_all(int fd, const void *buf, size_t n, int64_t deadline);

/* readv() that waits until some bytes arrive. Returns the count, 0 at end of
 * file, or -1 with errno. */
ssize_t co_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);

/* Writes every byte of iov[0..iovcnt). iov is not modified. Returns 0, or -1
 * with errno. */
int co_writev_all(int fd, const struct iovec *iov, int iovcnt,
                  int64_t deadline);

/* recv() that waits until some bytes arrive. Returns the count, 0 when the
 * peer closed, or -1 with errno. */
ssize_t co_recv(int fd, void *buf, size_t n, int flags, int64_t deadline);

/* Sends all n bytes (MSG_NOSIGNAL is added). Returns 0, or -1 with errno. */
int co_send_all(int fd, const void *buf, size_t n, int flags, int64_t deadline);

/* Accepts a connection; the new fd is O_NONBLOCK and close-on-exec. addr and
 * len may be NULL. Returns the fd, or -1 with errno. */
int co_accept(int fd, struct sockaddr *addr, socklen_t *len, int64_t deadline);

/* Connects the non-blocking socket fd to addr. Returns 0, or -1 with errno
 * (the connection's error, ETIMEDOUT, ECANCELED). */
int co_connect(int fd, const struct sockaddr *addr, socklen_t len,
               int64_t deadline);

/* Sends count bytes of in_fd from *offset (advanced as it goes) to out_fd.
 * Each sendfile() asks at most the server's chunk (--sendfile-max-chunk,
 * 2 MiB), and after a full chunk the hub serves others before the next, so
 * a big file never holds the thread. Returns the bytes sent, fewer only at
 * end of in_fd, or -1 with errno (part may have been sent: see *offset). */
ssize_t co_sendfile(int out_fd, int in_fd, off_t *offset, size_t count,
                    int64_t deadline);

/* Resolves host on the server's name-lookup threads (never the hub, never
 * behind co_offload's work) and connects a TCP socket to the first address
 * that answers before the deadline. Returns a non-blocking, close-on-exec fd
 * with TCP_NODELAY that the caller closes, or -1 with errno: ENXIO, no such
 * host (Linux has no errno of that name; connect never gives ENXIO, so it
 * only means this); EAGAIN, the resolver cannot answer now; EINVAL, a bad
 * port; otherwise the last connect's error, ETIMEDOUT or ECANCELED. */
int co_dial(const char *host, const char *port, int64_t deadline);

/* Why the calling thread's last co_dial failed, as one line ("no such
 * host: NAME", "NAME:PORT: Connection refused"); "" after a success. The
 * string is the server's, valid until the caller next waits. */
const char *co_dial_error(void);

/* ---- sync objects: what event, channel, semaphore, lock, result, queue
 * and pool share
 *
 * - Fair: waiters are served first come, first served, and a newcomer never
 *   overtakes a waiter. A wake completes the waiter's call (the item, permit,
 *   lock or value is handed to it), so once nobody waits, the object may be
 *   freed, even before the woken coroutines have run.
 * - Freeing an object while coroutines wait on it aborts with a message
 *   naming the call: it is a bug, not an error.
 * - Calls that never wait (set, release, close, *_nowait, task_done) work
 *   in cancelled coroutines and on the hub thread outside coroutines (a
 *   libev callback), unless said otherwise. Calls that may wait fail with
 *   ECANCELED once the caller is cancelled, even when they need not wait.
 * - Objects belong to the hub thread that made them.
 */

/* ---- event: a flag coroutines wait for -------------------------------- */

/* A new, clear event, or NULL with ENOMEM. Freed by co_event_free(). */
co_event_t *co_event_new(void);
/* Frees ev; nobody may be waiting on it. */
void co_event_free(co_event_t *ev);
/* Sets ev and wakes every waiter; it stays set until co_event_clear(). */
void co_event_set(co_event_t *ev);
void co_event_clear(co_event_t *ev);
int co_event_is_set(const co_event_t *ev);
/* Waits until ev is set. Returns 0, or -1 (ETIMEDOUT, ECANCELED). */
int co_event_wait(co_event_t *ev, int64_t deadline);

/* ---- channel: a bounded FIFO of fixed-size messages ------------------- */

/* A channel of messages of elem_size bytes holding up to capacity of them
 * (0: every send waits for a receiver). NULL with EINVAL (elem_size 0) or
 * ENOMEM. Freed by co_chan_free(). */
co_chan_t *co_chan_new(size_t elem_size, size_t capacity);
/* Frees ch; nobody may be waiting on it. */
void co_chan_free(co_chan_t *ch);
/* Copies elem_size bytes from elem into ch, waiting for room. Returns 0, or
 * -1 with EPIPE (closed), ETIMEDOUT or ECANCELED. */
int co_chan_send(co_chan_t *ch, const void *elem, int64_t deadline);
/* Copies the oldest message into elem, waiting for one. Returns 0, or -1 with
 * EPIPE (closed and drained), ETIMEDOUT or ECANCELED. */
int co_chan_recv(co_chan_t *ch, void *elem, int64_t deadline);
/* Closes ch: waiting and later senders get EPIPE; receivers get what is
 * buffered, then EPIPE. Closing twice does nothing. */
void co_chan_close(co_chan_t *ch);

/* ---- semaphore -------------------------------------------------------- */

/* A counting semaphore holding `value` permits, or NULL with ENOMEM. */
co_sem_t *co_sem_new(unsigned value);
/* gevent's BoundedSemaphore: a semaphore of `value` permits whose releases
 * fail once it holds `value` again. NULL with ENOMEM. Freed by
 * co_sem_free(). */
co_sem_t *co_sem_new_bounded(unsigned value);
/* Frees sem; nobody may be waiting on it. */
void co_sem_free(co_sem_t *sem);
/* Takes a permit, waiting (first come, first served) for one. Returns 0, or
 * -1 (ETIMEDOUT, ECANCELED). */
int co_sem_acquire(co_sem_t *sem, int64_t deadline);
/* Returns a permit, handing it to the longest waiter if there is one.
 * Returns 0, or -1 with EOVERFLOW (gevent's ValueError: released too many
 * times) when nobody waits and the semaphore already holds its bound: the
 * initial value for co_sem_new_bounded(), UINT_MAX otherwise. (It returned
 * void before: callers built then ignore the int, in a register.) */
int co_sem_release(co_sem_t *sem);

/* ---- lock: gevent.lock's Lock and RLock, owned by a coroutine ---------- */

/* co_lock_new: a Lock, which its owner may not take again (EDEADLK).
 * co_rlock_new: an RLock, which its owner may take again and holds until it
 * released it as many times. NULL with ENOMEM. Freed by co_lock_free(). */
co_lock_t *co_lock_new(void);
co_lock_t *co_rlock_new(void);
/* Frees lock; nobody may be waiting on it (it may be held). */
void co_lock_free(co_lock_t *lock);
/* Takes lock for the calling coroutine, waiting (first come, first served)
 * while another one holds it. Returns 0, or -1 with ETIMEDOUT, ECANCELED,
 * EDEADLK (a Lock the caller holds) or EOVERFLOW (an RLock held UINT_MAX
 * times). A coroutine that returns holding a lock leaves it held. */
int co_lock_acquire(co_lock_t *lock, int64_t deadline);
/* Releases one hold of lock; the last one hands it to the longest waiter.
 * Returns 0, or -1 with EPERM when the caller does not hold it (the hub's
 * own context never does). */
int co_lock_release(co_lock_t *lock);
/* Non-zero while a coroutine holds lock. */
int co_lock_locked(const co_lock_t *lock);

/* ---- result: gevent's AsyncResult, a value or an error set once -------- */

/* An empty result, or NULL with ENOMEM. Freed by co_result_free(). It
 * keeps the value pointer only: what it points to stays the setter's. */
co_result_t *co_result_new(void);
/* Frees r; nobody may be waiting on it. */
void co_result_free(co_result_t *r);
/* Stores value and wakes every waiter. Returns 0, or -1 with EALREADY
 * when r already holds a value or an error (r is unchanged). */
int co_result_set(co_result_t *r, void *value);
/* Stores the error err (an errno value, > 0) with an optional message
 * (copied, truncated to 127 bytes; NULL for none) and wakes every waiter.
 * Returns 0, or -1 with EALREADY (as above) or EINVAL (err <= 0). */
int co_result_set_error(co_result_t *r, int err, const char *msg);
/* Non-zero once r holds a value or an error. */
int co_result_ready(const co_result_t *r);
/* Non-zero once r holds a value (not an error). */
int co_result_successful(const co_result_t *r);
/* The message stored with r's error, or NULL (none). The string belongs to
 * r. */
const char *co_result_message(const co_result_t *r);
/* Waits until r is ready. Returns 0 with the value in *value (if value is
 * not NULL), or -1 with the stored error's errno, or with ETIMEDOUT or
 * ECANCELED when the wait itself ended first (then co_result_ready() is
 * 0). */
int co_result_get(co_result_t *r, void **value, int64_t deadline);
/* co_result_get() without waiting: -1 with EAGAIN while r is empty. */
int co_result_get_nowait(const co_result_t *r, void **value);

/* ---- queue: gevent's Queue and JoinableQueue, a FIFO of pointers ------- */

/* A queue of up to maxsize items (0: unbounded, as gevent's Queue()), or
 * NULL with ENOMEM. Items are void * the queue stores and never frees; the
 * ones left at co_queue_free() are dropped. Every queue counts the items
 * put and not yet marked done, for co_queue_join() (JoinableQueue). */
co_queue_t *co_queue_new(size_t maxsize);
/* Frees q; nobody may be waiting on it (to put, get or join). */
void co_queue_free(co_queue_t *q);
/* Appends item, waiting while a bounded q is full. A deadline already
 * past (0) never waits. Returns 0, or -1 with EPIPE (closed), ETIMEDOUT,
 * ECANCELED or ENOMEM (an unbounded q could not grow). */
int co_queue_put(co_queue_t *q, void *item, int64_t deadline);
/* Takes the oldest item into *item (if item is not NULL), waiting for one.
 * Returns 0, or -1 with EPIPE (closed and empty), ETIMEDOUT or ECANCELED. */
int co_queue_get(co_queue_t *q, void **item, int64_t deadline);
/* put and get that never wait: -1 with EAGAIN where those would wait
 * (gevent's Full and Empty), else as they do. */
int co_queue_put_nowait(co_queue_t *q, void *item);
int co_queue_get_nowait(co_queue_t *q, void **item);
/* The number of items in q (gevent's qsize()); waiting putters' are not. */
size_t co_queue_qsize(const co_queue_t *q);
/* Closes q (Python 3.13's Queue.shutdown()): waiting and later putters get
 * EPIPE; getters get the items left, then EPIPE. Joins are unaffected.
 * Closing twice does nothing. */
void co_queue_close(co_queue_t *q);
/* Marks one item taken from q as done; the last one wakes every joiner.
 * Returns 0, or -1 with EOVERFLOW (gevent's ValueError) when every item
 * put is already done. */
int co_queue_task_done(co_queue_t *q);
/* Waits until every item put in q has been marked done. Returns 0, or -1
 * with ETIMEDOUT or ECANCELED. */
int co_queue_join(co_queue_t *q, int64_t deadline);

/* ---- wait for the first of several (gevent.wait, iwait; Go's select) -- */

/* What a struct co_waitable waits for. */
enum {
    CO_WAIT_NONE,  /* nothing: the entry is skipped */
    CO_WAIT_CO,    /* .co has finished (co_join then returns at once) */
    CO_WAIT_EVENT, /* .event is set */
    /* .chan: CO_READABLE, a recv would not wait (a message, a waiting
     * sender, or closed); CO_WRITABLE, a send would not wait (room, a
     * waiting receiver, or closed) */
    CO_WAIT_CHAN,
    CO_WAIT_SEM, /* .sem would give a permit without waiting */
    CO_WAIT_FD,  /* .fd is readable or writable (as co_wait_fd) */
};

/* Most entries co_wait_any() watches without allocating. */
#define CO_WAIT_STACK 16

struct co_waitable {
    int kind;   /* CO_WAIT_* */
    int events; /* CHAN and FD: CO_READABLE and/or CO_WRITABLE */
    union {
        co_t *co;
        co_event_t *event;
        co_chan_t *chan;
        co_sem_t *sem;
        int fd;
    };
    int revents; /* out: what was ready (CO_READABLE for CO, EVENT, SEM) */
};

/* Waits until an entry of w[0..n) is ready and returns its index: the
 * lowest ready one if some are ready at the call, else the first to become
 * ready. Sets every entry's revents to what the call last saw. Returns -1
 * with ETIMEDOUT, ECANCELED, ENOENT (every entry is CO_WAIT_NONE), EINVAL
 * (an unknown kind, a NULL object, fd < 0, no events for CHAN or FD),
 * EDEADLK (the caller itself as CO_WAIT_CO) or ENOMEM (over CO_WAIT_STACK
 * entries). O(n): one pass to check (and one poll() for the fds), one to
 * add a watcher per entry and one to remove them; up to CO_WAIT_STACK
 * entries the watchers live on the caller's stack.
 * Unlike gevent.wait(objects, count=1), it returns an index, not the
 * objects. Unlike Go's select, it only reports readiness, as poll() does:
 * nothing is received, sent or acquired, so the call that follows may
 * still wait if another coroutine came first (give it a short deadline),
 * and the two ends of an unbuffered channel never meet if both only wait
 * here. There is no random choice among ready entries: the lowest index
 * wins, so a busy entry first in the array can hide the others. */
int co_wait_any(struct co_waitable *w, size_t n, int64_t deadline);

/* gevent.iwait: co_wait_any(), then the entry returned becomes
 * CO_WAIT_NONE (the caller's array changes), so calling it again and again
 * reports each entry once, in the order they became ready. Returns the
 * index, or -1 with ENOENT once every entry was reported, or as
 * co_wait_any(). */
int co_wait_next(struct co_waitable *w, size_t n, int64_t deadline);

/* ---- pool: spawn with a limit on how many run at once ----------------- */

/* A pool running at most `limit` coroutines at once, or NULL with EINVAL
 * (limit 0) or ENOMEM. */
co_pool_t *co_pool_new(size_t limit);
/* Cancels and joins the pool's coroutines still running, then frees it.
 * Nobody may be waiting for a slot (in co_pool_spawn, co_pool_map, or an
 * iterator not yet freed). */
void co_pool_free(co_pool_t *pool);
/* Waits for a free slot, then starts fn(arg) in the pool; its result is
 * dropped. Returns 0, or -1 with ETIMEDOUT, ECANCELED or ENOMEM. */
int co_pool_spawn(co_pool_t *pool, co_fn fn, void *arg, int64_t deadline);
/* Waits until every coroutine of the pool has returned. Returns 0, or -1 with
 * ETIMEDOUT or ECANCELED. */
int co_pool_join(co_pool_t *pool, int64_t deadline);
/* gevent's Pool.map: runs fn(args[i], &result) for every i < n, starting
 * them in order as the pool has slots (shared with co_pool_spawn), and
 * waits for all. results[i] gets item i's result (NULL if it failed) and
 * errs[i] 0 or its errno (EIO if it failed leaving errno 0); either array
 * may be NULL. Returns how many items failed (0: none), or -1 with
 * ETIMEDOUT or ECANCELED (the items still running were cancelled and have
 * ended; those not started report this errno) or ENOMEM. */
int co_pool_map(co_pool_t *pool, co_task_fn fn, void *const *args, size_t n,
                void **results, int *errs, int64_t deadline);
/* gevent's Pool.imap_unordered: starts the items as co_pool_map() does and
 * returns an iterator giving each back as it finishes. args must live
 * until co_pool_iter_free(), which the caller must call, and before
 * co_pool_free(). Returns NULL with EINVAL (fn NULL, or args NULL and n >
 * 0), ENOMEM or ECANCELED. */
co_pool_iter_t *co_pool_imap_unordered(co_pool_t *pool, co_task_fn fn,
                                       void *const *args, size_t n);
/* Waits for the next finished item: its index, result and error (0 or its
 * errno) go to *index, *result, *err (each may be NULL). Returns 0, or -1
 * with EPIPE (all n returned), ETIMEDOUT or ECANCELED. */
int co_pool_iter_next(co_pool_iter_t *it, size_t *index, void **result,
                      int *err, int64_t deadline);
/* Cancels the items still running (those not started never will), waits
 * until they have ended, even in a cancelled coroutine, and frees it.
 * Nobody may be in co_pool_iter_next() on it. */
void co_pool_iter_free(co_pool_iter_t *it);

/* ---- offload: blocking work on a thread pool -------------------------- */

/* Runs fn(arg) on an offload thread while the calling coroutine waits; the
 * hub keeps serving others. fn is plain C: it must not call this API.
 * Returns 0 once fn has returned. Returns -1 with ETIMEDOUT or ECANCELED if the
 * wait ends first: fn then still runs to its end (or is skipped if no thread
 * had taken it yet), after which abandon(arg), if not NULL, is called on the
 * hub's thread to free arg. In short: whenever co_offload returns -1,
 * abandon(arg) has been or will be called (also for ECANCELED before the
 * work was queued, and ENOMEM: no thread could be started). So arg on the
 * caller's stack is only safe without a deadline and in a coroutine nobody
 * cancels; otherwise pass heap memory and an abandon function. */
int co_offload(co_work_fn fn, void *arg, co_work_fn abandon, int64_t deadline);

/* Registers hooks run on every offload thread: init(arg) before the thread's
 * next task (threads started later run it first), fini(arg) when the thread
 * stops. Use them to give each thread its own resource (a database handle in
 * a __thread variable). arg must outlive the pool. Returns 0, or -1 with
 * ENOMEM. */
int co_offload_hook(co_work_fn init, co_work_fn fini, void *arg);

/* Sets the number of offload threads (default 4, or COSERVE_OFFLOAD_THREADS);
 * must be called before the first co_offload(). Returns 0, or -1 with EINVAL
 * (n is 0 or over 1024) or EBUSY (the pool already started). */
int co_offload_set_threads(unsigned n);

/* ==== HTTP apps (WSGI for C) ========================================== */

/*
 * An app is a shared object exporting one descriptor named `coserve_app`
 * (write it with COSERVE_APP). The server calls init once per worker before
 * serving, fini once at the worker's end, and handler once per request, in
 * the request's own coroutine: the handler may use every call above.
 *
 * A handler returns 0 when it is done. A handler that returns -1 before its
 * response started gets the client a 500 (and the error log names the app
 * and the request); after the response started, the connection is closed,
 * the error log says so, and the access log keeps what the client got (the
 * status sent, the body bytes that left).
 * Request and response memory, and every string they hand out, live until
 * the handler returns: copy what you keep longer. Coroutines the handler
 * starts may use the request and response while it runs (join them before
 * returning). Any other use, after the handler returned or from a
 * coroutine started before it, aborts the worker with a message naming the
 * app and the call: it is a bug, like a call from the wrong thread.
 */
typedef struct co_request co_request_t;
typedef struct co_response co_response_t;

typedef int (*co_handler_fn)(co_request_t *req, co_response_t *res);

/*
 * ---- stream apps (gevent's StreamServer) ----
 *
 * A descriptor with .stream serves a plain TCP or unix protocol: the master
 * binds .listen (the operator can move or turn it off: --stream-listen
 * NAME=ADDR|off), holds the socket across reloads as it holds the HTTP one,
 * and every worker accepts from it. Each connection runs stream(fd, peer,
 * peer_len) in a coroutine of its own. fd is non-blocking for the co_*
 * calls, and plain read/write/recv/send on it wait cooperatively (unless
 * the server runs --no-hooks); a plain write making no progress for
 * --write-timeout fails with EAGAIN. fd belongs to the server, which
 * closes it when stream returns: do not close it (shutdown() is fine).
 * peer lives until stream returns. At a stop or reload the connection
 * keeps running for --graceful-timeout, then is cancelled: its waits fail
 * with ECANCELED. Return 0, or -1 with errno (logged).
 */
typedef int (*co_stream_fn)(int fd, const struct sockaddr *peer,
                            socklen_t peer_len);

struct co_app {
    uint32_t abi_version;  /* COSERVE_ABI_VERSION, checked at load */
    const char *name;      /* for logs */
    const char *mount;     /* "/hello"; NULL: "/" + the file's name */
    int (*init)(void);     /* optional, per worker: 0 ok, -1 refuse to load */
    void (*fini)(void);    /* optional, per worker */
    co_handler_fn handler; /* required unless .stream is set */
    /* ABI 2: a plain TCP or unix protocol (see "stream apps" above) */
    const char *listen;  /* "127.0.0.1:9000", "[::1]:9000", "unix:/path" */
    co_stream_fn stream; /* run per connection; NULL: none */
};

#define COSERVE_APP_SYMBOL "coserve_app"
/* A const at namespace scope has internal linkage in C++: the descriptor
 * needs extern "C" there to be found by name. g++ -Wextra would also warn
 * about the fields a designated initializer leaves out (C does not). */
#ifdef __cplusplus
#define COSERVE_APP_BEGIN                                                      \
    _Pragma("GCC diagnostic push") _Pragma(                                    \
        "GCC diagnostic ignored \"-Wmissing-field-initializers\"") extern "C"
/* the pragma cannot come before the ';': a redeclaration takes the user's */
#define COSERVE_APP_END                                                        \
    ;                                                                          \
    _Pragma("GCC diagnostic pop") extern "C" const struct co_app coserve_app
#else
#define COSERVE_APP_BEGIN
#define COSERVE_APP_END
#endif
/* Defines the descriptor: COSERVE_APP(.name = "hello", .handler = hello);
 * (C, or C++20, whose designated initializers must keep the fields' order) */
#define COSERVE_APP(...)                                                       \
    COSERVE_APP_BEGIN __attribute__((visibility("default")))                   \
    const struct co_app coserve_app = {.abi_version = COSERVE_ABI_VERSION,     \
                                       __VA_ARGS__} COSERVE_APP_END

/* ---- request -------------------------------------------------------- */

/* "GET", "POST", ... */
const char *co_req_method(const co_request_t *req);
/* The request target exactly as received: "/notes/3?x=1". */
const char *co_req_target(const co_request_t *req);
/* The percent-decoded path, no query: "/notes/3". */
const char *co_req_path(const co_request_t *req);
/* The app's mount, like SCRIPT_NAME: "/notes" (empty for "/"). */
const char *co_req_script_name(const co_request_t *req);
/* The decoded path below the mount, like PATH_INFO: "/3" (may be ""). */
const char *co_req_path_info(const co_request_t *req);
/* The raw query string without '?', "" if none. */
const char *co_req_query(const co_request_t *req);
/* Copies the percent-decoded value of query parameter `name` into buf
 * (NUL-terminated). Returns its length, or -1 with ENOENT (absent) or
 * ENOSPC (does not fit in size bytes). */
ssize_t co_req_query_param(const co_request_t *req, const char *name, char *buf,
                           size_t size);
/* 10 for HTTP/1.0, 11 for HTTP/1.1. */
int co_req_version(const co_request_t *req);
/* The value of the first header named `name` (any case), or NULL. */
const char *co_req_header(const co_request_t *req, const char *name);
/* Number of header lines, and the i-th (0-based) as name and value.
 * co_req_header_at returns 0, or -1 with ERANGE. */
size_t co_req_header_count(const co_request_t *req);
int co_req_header_at(const co_request_t *req, size_t i, const char **name,
                     const char **value);
/* Peer and local addresses as text ("127.0.0.1", "::1", "unix"), and ports
 * (0 for unix sockets). */
const char *co_req_remote_addr(const co_request_t *req);
int co_req_remote_port(const co_request_t *req);
const char *co_req_local_addr(const co_request_t *req);
int co_req_local_port(const co_request_t *req);
/* "http" or "https" (from a trusted proxy). */
const char *co_req_scheme(const co_request_t *req);
/* The Content-Length, or -1 when the body is chunked or absent. */
int64_t co_req_content_length(const co_request_t *req);
/* Reads up to n bytes of the body (chunked encoding removed; a pending
 * "Expect: 100-continue" is answered first). Returns the count, 0 at the
 * end of the body, or -1 with errno: ETIMEDOUT (the deadline or the
 * server's body timeout), EMSGSIZE (over the body limit: the server answers
 * 413), EPROTO (malformed body), ECONNRESET, ECANCELED. */
ssize_t co_req_read(co_request_t *req, void *buf, size_t n, int64_t deadline);

/* ---- response ------------------------------------------------------- */

/* Sets the status (100..999; default 200). Returns 0, or -1 with EINVAL or
 * EALREADY (the head was sent, or fixed by co_res_send()). */
int co_res_status(co_response_t *res, int status);
/* Adds a header line (copied). Content-Length set here fixes the body size;
 * Date, Server, Connection and Transfer-Encoding are the server's. Returns
 * 0, or -1 with EINVAL (CR, LF or NUL in it, or a server-owned name),
 * ENOSPC (headers too large) or EALREADY (the head was sent, or fixed by
 * co_res_send()). */
int co_res_header(co_response_t *res, const char *name, const char *value);
/* Appends body bytes. Small bodies are gathered and sent with a
 * Content-Length when the handler returns; a body that outgrows the buffer,
 * or co_res_flush(), starts streaming (chunked for HTTP/1.1, close-delimited
 * for HTTP/1.0) unless a Content-Length was set. HEAD requests send no body.
 * Returns 0, or -1 with errno (EPIPE/ECONNRESET: the client left,
 * ETIMEDOUT, ECANCELED, EMSGSIZE: more than the Content-Length). */
int co_res_write(co_response_t *res, const void *buf, size_t n);
/* Sends the head and everything written so far now. Returns 0 or -1. */
int co_res_flush(co_response_t *res);
/* Sends len bytes of fd from offset as the body (sendfile). With nothing
 * written before and no Content-Length set, len becomes the Content-Length.
 * fd stays the caller's. Returns 0, or -1 with errno. */
int co_res_sendfile(co_response_t *res, int fd, off_t offset, size_t len);
/* Shorthand: status, Content-Type and a whole body. It fixes the head:
 * later co_res_status, co_res_header and co_res_send calls fail with
 * EALREADY (a second co_res_send is also logged, naming the app), while
 * co_res_write, co_res_flush and co_res_sendfile add to the body. Returns
 * 0, or -1 with EALREADY (the head was sent or fixed before), or the errno
 * of co_res_status, co_res_header or co_res_write. */
int co_res_send(co_response_t *res, int status, const char *content_type,
                const void *body, size_t len);
/* Non-zero once the head can no longer change: it was sent, or fixed by
 * co_res_send(). */
int co_res_started(const co_response_t *res);

/* ---- WebSocket (RFC 6455, permessage-deflate RFC 7692) --------------
 *
 * A handler takes the request over with co_ws_accept() and then talks in
 * messages, in its own coroutine, until it returns; the server then ends
 * the close handshake (1000, or 1011 if the handler returned -1) and
 * closes the connection. The server keeps the protocol: client frames
 * must be masked, fragments are put together (control frames may come
 * between them), pings are answered, text and close reasons must be
 * UTF-8 (else close 1007), a message over the limit gets 1009 (server
 * flag --ws-max-message, 1 MiB), any other breach 1002. While the app
 * waits in co_ws_recv the server pings once nothing moved one way for
 * --ws-ping-interval (30 s: proxies see traffic) and closes (1001) a peer
 * silent for --ws-idle-timeout (75 s); when
 * the server stops (TERM, HUP), a waiting co_ws_recv sends 1001 at once
 * and waits briefly for the answer. One coroutine may receive while
 * others send: frames never interleave. Coroutines the handler started
 * must be joined before it returns, as for the request.
 */
typedef struct co_ws co_ws_t;

/* Message types (the RFC's opcodes). */
#define CO_WS_TEXT 1
#define CO_WS_BINARY 2

/* co_ws_accept flags: never negotiate permessage-deflate. */
#define CO_WS_NO_DEFLATE 1

/* Non-zero if req asks for a WebSocket (GET, HTTP/1.1, Upgrade:
 * websocket, Connection: upgrade), so a handler can serve a page to
 * anything else. */
int co_ws_is_upgrade(const co_request_t *req);

/* Checks the handshake (Sec-WebSocket-Key of 16 bytes, version 13),
 * picks the first of protocols (a NULL-terminated list in the server's
 * order of preference, or NULL) that the client offers, accepts
 * permessage-deflate when offered (unless flags has CO_WS_NO_DEFLATE),
 * and sends the 101 answer with any headers set before by co_res_header.
 * The request's head then moves into a compact copy (an idle WebSocket
 * holds no read buffer and no header table): co_req_* answer as before,
 * but strings co_req_target, co_req_query, co_req_path,
 * co_req_path_info, co_req_header* or the remote address returned
 * before the call are not valid after it; ask again.
 * Returns the WebSocket, which belongs to the server and lives until the
 * handler returns; or NULL with errno: EPROTO (not a valid handshake: a
 * 400, or a 426 naming version 13, is ready to go when the handler
 * returns 0), EALREADY (the response started, or a second call), EINVAL
 * (unknown flags), ENOMEM, or a write's errno (the client left). */
co_ws_t *co_ws_accept(co_request_t *req, co_response_t *res,
                      const char *const *protocols, int flags);

/* The subprotocol co_ws_accept chose, or NULL. The string is ws's. */
const char *co_ws_protocol(const co_ws_t *ws);

/* Waits for the next whole message. Sets *data to its bytes (the
 * server's, valid until the next co_ws_recv or the handler's return;
 * text is UTF-8, not NUL-terminated) and *type to CO_WS_TEXT or
 * CO_WS_BINARY; returns its length (0 is a message too). Returns -1 with
 * errno: EPIPE (the connection is closed: the close handshake ended, or
 * the server is stopping; co_ws_close_code says the peer's code),
 * ETIMEDOUT or ECANCELED (nothing lost: call again), EPROTO, EILSEQ or
 * EMSGSIZE (the peer broke the protocol, sent bad UTF-8, or too big a
 * message: the server closed with 1002, 1007 or 1009), ECONNABORTED (the
 * peer stayed silent past the idle timeout), ECONNRESET (it left without
 * a close frame). After an error other than ETIMEDOUT and ECANCELED,
 * every call fails the same way. */
ssize_t co_ws_recv(co_ws_t *ws, void **data, int *type, int64_t deadline);

/* Sends one message of type CO_WS_TEXT (data must be UTF-8) or
 * CO_WS_BINARY, compressed when the client agreed to it. data stays the
 * caller's. Returns 0, or -1 with errno: EINVAL (a bad type), EILSEQ
 * (text not UTF-8), EPIPE (closed or closing), ETIMEDOUT, ECANCELED, the
 * socket's errno. A send cut by its deadline half-way leaves the
 * connection unusable (later calls fail with EPIPE). */
int co_ws_send(co_ws_t *ws, int type, const void *data, size_t len,
               int64_t deadline);

/* Sends a ping with up to 125 bytes of data (the pong is dropped when it
 * comes: co_ws_recv keeps the connection alive by itself). Returns 0, or
 * -1 with EINVAL (too long), EPIPE, ETIMEDOUT, ECANCELED. */
int co_ws_ping(co_ws_t *ws, const void *data, size_t len, int64_t deadline);

/* Closes: sends a close frame with code (1000..4999 as RFC 6455 7.4
 * allows; 0 for none) and reason (UTF-8, at most 123 bytes; NULL for
 * none), then reads until the peer's close frame, dropping messages.
 * Returns 0 once the peer answered (or the connection was already
 * closed), -1 with errno: EINVAL (a code or reason not allowed), ETIMEDOUT
 * (no answer by deadline), ECANCELED, the socket's errno. Either way no
 * more messages come or go. */
int co_ws_close(co_ws_t *ws, int code, const char *reason, int64_t deadline);

/* The close code the peer sent: 0 while none came, 1005 if its close had
 * no code, 1006 if the connection ended without one. If reason is not
 * NULL, *reason is its reason ("" if none), a string of ws's. */
int co_ws_close_code(const co_ws_t *ws, const char **reason);

/* Changes this connection's limits from the server's: the largest message
 * (bytes), the ping interval and the idle timeout (ms; < 0: never). 0
 * keeps a limit as it is. Returns 0. */
int co_ws_set_limits(co_ws_t *ws, size_t max_message, int64_t ping_ms,
                     int64_t idle_ms);

/* The generic Upgrade (RFC 9110 7.8): if the request asks for protocol
 * (Upgrade: protocol, Connection: upgrade, GET over HTTP/1.1, no body),
 * sends "101 Switching Protocols" with any headers set by co_res_header
 * and hands over the socket. Bytes the client already sent behind its
 * head are copied to early (*early_len: its size in, the count out;
 * early_len may be NULL only if none came). Returns the fd: non-blocking,
 * for the co_* calls (or plain read/write, made cooperative by the
 * hooks); the server closes it when the handler returns, so do not close
 * it. Returns -1 with errno: EPROTO (no such Upgrade asked: nothing was
 * sent, answer as you like), EMSGSIZE (more early bytes than *early_len),
 * EALREADY (the response started), EINVAL (no protocol), or a write's. */
int co_upgrade(co_request_t *req, co_response_t *res, const char *protocol,
               void *early, size_t *early_len);

/* ---- Server-Sent Events (text/event-stream) -------------------------
 *
 * A stream the browser's EventSource reads and reconnects by itself.
 * co_sse_start sends the head at once: status 200, Content-Type
 * text/event-stream, Cache-Control: no-cache, and X-Accel-Buffering: no
 * (so nginx passes each event on as it comes); it also lifts the request
 * timeout, as the stream lives until the client leaves or the server
 * begins to stop (TERM, HUP; the handler is then cancelled: its waits
 * fail with ECANCELED), or the handler returns.
 * A reconnecting browser sends the last id it saw as the Last-Event-ID
 * header (co_req_header).
 */

/* Starts the stream; retry_ms >= 0 also tells the browser how long to
 * wait before reconnecting. Returns 0, or -1 with EALREADY (the head was
 * sent or fixed) or a write's errno. */
int co_sse_start(co_request_t *req, co_response_t *res, int64_t retry_ms);

/* Sends one event: an optional type (event:) and id (id:), neither with
 * CR or LF, and data[0..len), one data: line per line of it. The event
 * leaves at once. Returns 0, or -1 with EINVAL (CR or LF in event or id,
 * or the stream was not started) or a write's errno (EPIPE: the client
 * left). */
int co_sse_send(co_response_t *res, const char *event, const char *id,
                const char *data, size_t len);

/* Sends a comment line (": text"), which browsers ignore: a keep-alive
 * that also lets a proxy's read timeout see traffic. Returns as
 * co_sse_send. */
int co_sse_comment(co_response_t *res, const char *text);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* COSERVE_H */
