/* The offload thread pool (see offload.h). */
#include "core/offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/hub.h"
#include "core/log.h"

#define OFFLOAD_DEFAULT_THREADS 4
/* Lookups are short waits on a resolver: a few threads cover a slow one. */
#define OFFLOAD_NAMES_DEFAULT_THREADS 4
#define OFFLOAD_MAX_THREADS 1024

enum task_state { TASK_QUEUED, TASK_RUNNING, TASK_DONE };

struct offload_task {
    co_work_fn fn, abandon;
    void *arg;
    struct hub *hub;
    struct co *waiter;
    enum task_state state; /* guarded by the pool lock */
    int abandoned;         /* hub thread only */
    int completed;         /* hub thread only: the done list delivered it */
    struct list link;      /* pool queue, then the hub's done list */
};

struct offload_hook {
    co_work_fn init, fini;
    void *arg;
};

/* One thread pool: a queue, its threads and (app pool only) the per-thread
 * hooks. Name lookups get a pool of their own (see offload.h). */
struct offload_pool {
    const char *name; /* for logs */
    const char *env;  /* the variable that sizes it */
    unsigned def;     /* default number of threads */
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct list queue;
    unsigned nthreads; /* wanted; fixed once started */
    unsigned started;
    int stopping;
    pthread_t *threads;
    int queued;          /* atomic mirror of the queue's length */
    unsigned generation; /* bumped (under the lock) at every broadcast */
    int spinner;         /* atomic: a worker is watching the queue */
    unsigned busy;       /* atomic: threads running a task (metrics) */
    struct offload_hook *hooks;
    size_t nhooks, hooks_cap;
};

static struct offload_pool offload_pools[OFFLOAD_POOLS] = {
    [OFFLOAD_APP] = {.name = "offload",
                     .env = "COSERVE_OFFLOAD_THREADS",
                     .def = OFFLOAD_DEFAULT_THREADS,
                     .lock = PTHREAD_MUTEX_INITIALIZER,
                     .work = PTHREAD_COND_INITIALIZER},
    [OFFLOAD_NAMES] = {.name = "name lookup",
                       .env = "COSERVE_DNS_THREADS",
                       .def = OFFLOAD_NAMES_DEFAULT_THREADS,
                       .lock = PTHREAD_MUTEX_INITIALIZER,
                       .work = PTHREAD_COND_INITIALIZER},
};

/* ---- workers ------------------------------------------------------- */

/* Runs the init hooks this thread has not run yet (hooks may be added while
 * the pool runs: an app loaded later). Called with the pool lock held. */
static void offload_catch_up_hooks(struct offload_pool *pool, size_t *done)
{
    while (*done < pool->nhooks) {
        struct offload_hook hook = pool->hooks[(*done)++];
        if (!hook.init)
            continue;
        pthread_mutex_unlock(&pool->lock);
        hook.init(hook.arg);
        pthread_mutex_lock(&pool->lock);
    }
}

static void offload_deliver(struct offload_task *t)
{
    struct hub *hub = t->hub;
    pthread_mutex_lock(&hub->done_lock);
    int was_empty = list_empty(&hub->done_list);
    list_push_back(&hub->done_list, &t->link);
    int spinning = hub->done_spinning;
    __atomic_store_n(&hub->done_ready, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&hub->done_lock);
    /* One wake per batch: the hub drains the whole list per callback; none
     * while it watches the list itself (offload_spin). */
    if (was_empty && !spinning)
        ev_async_send(hub->loop, &hub->wake);
}

static inline void offload_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* About 20-50 us of watching: longer than the gap between two short tasks
 * from a busy hub, shorter than anything a client would notice. */
#define OFFLOAD_SPIN 1500

/* An idle worker watches the queue briefly before sleeping on the condvar,
 * so a burst of short tasks does not pay a futex wake-up each. Only one
 * worker watches at a time: on a small machine spinners would steal the
 * hub's CPU. Called and returns with the pool lock held; non-zero if work
 * arrived. */
static int offload_worker_spin(struct offload_pool *pool)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&pool->spinner, &expected, 1, 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    pthread_mutex_unlock(&pool->lock);
    int found = 0;
    for (int i = 0; i < OFFLOAD_SPIN && !found; i++) {
        found = __atomic_load_n(&pool->queued, __ATOMIC_ACQUIRE) > 0;
        offload_relax();
    }
    __atomic_store_n(&pool->spinner, 0, __ATOMIC_RELEASE);
    pthread_mutex_lock(&pool->lock);
    /* A task queued after the last look, while we waited for the lock, was
     * signalled to nobody: sleeping now would leave it queued (seen under
     * qemu, where the window is wide). Under the lock the count is exact. */
    return found || __atomic_load_n(&pool->queued, __ATOMIC_RELAXED) > 0;
}

static void *offload_worker(void *arg)
{
    struct offload_pool *pool = arg;
    size_t hooks_done = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        offload_catch_up_hooks(pool, &hooks_done);
        struct list *n = list_pop_front(&pool->queue);
        if (!n) {
            if (pool->stopping)
                break;
            /* Anything broadcast while we spun unlocked (stop, a new hook)
             * bumped the generation: look again instead of sleeping. */
            unsigned gen = pool->generation;
            if (offload_worker_spin(pool) || gen != pool->generation)
                continue;
            pthread_cond_wait(&pool->work, &pool->lock);
            continue;
        }
        __atomic_fetch_sub(&pool->queued, 1, __ATOMIC_RELAXED);
        struct offload_task *t = list_entry(n, struct offload_task, link);
        t->state = TASK_RUNNING;
        pthread_mutex_unlock(&pool->lock);
        __atomic_fetch_add(&pool->busy, 1, __ATOMIC_RELAXED);
        t->fn(t->arg);
        __atomic_fetch_sub(&pool->busy, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&pool->lock);
        t->state = TASK_DONE;
        pthread_mutex_unlock(&pool->lock);
        offload_deliver(t);
        pthread_mutex_lock(&pool->lock);
    }
    while (hooks_done > 0) {
        struct offload_hook hook = pool->hooks[--hooks_done];
        if (hook.fini) {
            pthread_mutex_unlock(&pool->lock);
            hook.fini(hook.arg);
            pthread_mutex_lock(&pool->lock);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Stops a pool's workers so every fini hook runs (a database closes
 * cleanly). Work still queued runs first. */
static void offload_stop(struct offload_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->work);
    unsigned n = pool->started;
    pool->started = 0;
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_lock(&pool->lock);
    free(pool->threads);
    pool->threads = NULL;
    pool->nhooks = 0; /* their fini ran; the code may be unloaded next */
    pool->stopping = 0;
    pthread_mutex_unlock(&pool->lock);
}

/* At exit, and by offload__shutdown: every pool-> */
static void offload_stop_all(void)
{
    for (int i = 0; i < OFFLOAD_POOLS; i++)
        offload_stop(&offload_pools[i]);
}

void offload__shutdown(void)
{
    offload_stop_all();
}

void offload__stats(enum offload_pool_id which, unsigned *queued,
                    unsigned *busy, unsigned *threads)
{
    struct offload_pool *pool = &offload_pools[which];
    int q = __atomic_load_n(&pool->queued, __ATOMIC_RELAXED);
    *queued = q > 0 ? (unsigned)q : 0;
    *busy = __atomic_load_n(&pool->busy, __ATOMIC_RELAXED);
    *threads = __atomic_load_n(&pool->started, __ATOMIC_RELAXED);
}

static unsigned offload_default_threads(const struct offload_pool *pool)
{
    const char *env = getenv(pool->env);
    if (env && *env) {
        char *end;
        unsigned long n = strtoul(env, &end, 10);
        if (!*end && n > 0 && n <= OFFLOAD_MAX_THREADS)
            return (unsigned)n;
        log_warn("%s=%s is not 1..%d; using %u", pool->env, env,
                 OFFLOAD_MAX_THREADS, pool->def);
    }
    return pool->def;
}

/* Starts the workers on first use. Called with the pool lock held. */
static int offload_start(struct offload_pool *pool)
{
    if (pool->started)
        return 0;
    if (!pool->nthreads)
        pool->nthreads = offload_default_threads(pool);
    pool->threads = calloc(pool->nthreads, sizeof *pool->threads);
    if (!pool->threads)
        return -1;
    if (!pool->queue.next)
        list_init(&pool->queue);
    /* Workers run plain C: small stacks are plenty for SQLite and
     * getaddrinfo, and keep 1,024 threads cheap. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    for (unsigned i = 0; i < pool->nthreads; i++) {
        if (pthread_create(&pool->threads[i], &attr, offload_worker, pool)) {
            if (!pool->started) {
                pthread_attr_destroy(&attr);
                errno = ENOMEM;
                return -1;
            }
            log_warn("%s: started %u of %u threads", pool->name, pool->started,
                     pool->nthreads);
            break;
        }
        pool->started++;
    }
    pthread_attr_destroy(&attr);
    static int registered;
    if (!registered++)
        atexit(offload_stop_all);
    return 0;
}

/* ---- hub side ------------------------------------------------------ */

static void offload_task_free(struct hub *hub, struct offload_task *t)
{
    list_push_back(&hub->offload_free, &t->link);
}

/* One fewer task in flight: the loop holds a reference while any is, so
 * it waits for completions but does not count them as a deadlock. */
static void offload_settled(struct hub *hub)
{
    if (--hub->offloads == 0)
        ev_unref(hub->loop);
}

static void offload_drain(struct hub *hub)
{
    struct list done;
    list_init(&done);
    pthread_mutex_lock(&hub->done_lock);
    __atomic_store_n(&hub->done_ready, 0, __ATOMIC_RELAXED);
    if (!list_empty(&hub->done_list)) {
        done = hub->done_list;
        done.next->prev = &done;
        done.prev->next = &done;
        list_init(&hub->done_list);
    }
    pthread_mutex_unlock(&hub->done_lock);
    struct list *n;
    while ((n = list_pop_front(&done))) {
        struct offload_task *t = list_entry(n, struct offload_task, link);
        offload_settled(hub);
        if (t->abandoned) {
            if (t->abandon)
                t->abandon(t->arg);
            offload_task_free(hub, t);
        } else {
            t->completed = 1;
            coro__wake(t->waiter, 0);
        }
    }
}

static void offload_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    offload_drain(list_entry(w, struct hub, wake));
}

/* The hub's on_idle: about to block with offloads in flight, it watches
 * for completions for a few microseconds, which saves both the worker's
 * eventfd write and the hub's wake-up when work is short. */
static int offload_spin(struct hub *hub)
{
    if (!hub->offloads)
        return 0;
    pthread_mutex_lock(&hub->done_lock);
    hub->done_spinning = 1;
    pthread_mutex_unlock(&hub->done_lock);
    for (int i = 0; i < OFFLOAD_SPIN; i++) {
        if (__atomic_load_n(&hub->done_ready, __ATOMIC_ACQUIRE))
            break;
        offload_relax();
    }
    pthread_mutex_lock(&hub->done_lock);
    hub->done_spinning = 0;
    int ready = !list_empty(&hub->done_list);
    pthread_mutex_unlock(&hub->done_lock);
    if (ready)
        offload_drain(hub);
    return ready;
}

void offload__hub_init(struct hub *hub)
{
    pthread_mutex_init(&hub->done_lock, NULL);
    list_init(&hub->done_list);
    list_init(&hub->offload_free);
    ev_async_init(&hub->wake, offload_wake_cb);
    ev_async_start(hub->loop, &hub->wake);
    ev_unref(hub->loop); /* only in-flight tasks keep the loop alive */
    hub->on_idle = offload_spin;
}

void offload__hub_destroy(struct hub *hub)
{
    if (hub->offloads)
        log__fatal("hub destroyed with %zu offloads in flight", hub->offloads);
    ev_ref(hub->loop);
    ev_async_stop(hub->loop, &hub->wake);
    struct list *n;
    while ((n = list_pop_front(&hub->offload_free)))
        free(list_entry(n, struct offload_task, link));
    pthread_mutex_destroy(&hub->done_lock);
}

int offload__run(enum offload_pool_id which, const char *caller, co_work_fn fn,
                 void *arg, co_work_fn abandon, int64_t deadline)
{
    struct offload_pool *pool = &offload_pools[which];
    struct co *self = coro__self(caller);
    struct hub *hub = self->hub;
    if (coro__cancel_pending(self)) {
        if (abandon) /* arg was handed over: give it back to be freed */
            abandon(arg);
        errno = ECANCELED;
        return -1;
    }
    struct list *n = list_pop_front(&hub->offload_free);
    struct offload_task *t =
        n ? list_entry(n, struct offload_task, link) : malloc(sizeof *t);
    if (!t) {
        if (abandon)
            abandon(arg);
        errno = ENOMEM;
        return -1;
    }
    *t = (struct offload_task){
        .fn = fn, .abandon = abandon, .arg = arg, .hub = hub, .waiter = self};
    pthread_mutex_lock(&pool->lock);
    if (offload_start(pool) < 0) {
        pthread_mutex_unlock(&pool->lock);
        offload_task_free(hub, t);
        if (abandon)
            abandon(arg);
        errno = ENOMEM;
        return -1;
    }
    list_push_back(&pool->queue, &t->link);
    __atomic_fetch_add(&pool->queued, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    if (hub->offloads++ == 0)
        ev_ref(hub->loop);

    int rc = coro__park(self, deadline, 0);
    if (t->completed) { /* done, even if a cancel came in the same turn */
        offload_task_free(hub, t);
        return 0;
    }
    int err = rc < 0 ? errno : EINTR;
    pthread_mutex_lock(&pool->lock);
    if (t->state == TASK_QUEUED) {
        list_remove(&t->link);
        __atomic_fetch_sub(&pool->queued, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&pool->lock);
        offload_settled(hub);
        if (abandon)
            abandon(arg);
        offload_task_free(hub, t);
    } else {
        t->abandoned = 1; /* the completion callback calls abandon */
        pthread_mutex_unlock(&pool->lock);
    }
    errno = err;
    return -1;
}

int co_offload(co_work_fn fn, void *arg, co_work_fn abandon, int64_t deadline)
{
    return offload__run(OFFLOAD_APP, "co_offload", fn, arg, abandon, deadline);
}

int co_offload_hook(co_work_fn init, co_work_fn fini, void *arg)
{
    struct offload_pool *pool = &offload_pools[OFFLOAD_APP];
    pthread_mutex_lock(&pool->lock);
    if (pool->nhooks == pool->hooks_cap) {
        size_t cap = pool->hooks_cap ? pool->hooks_cap * 2 : 8;
        struct offload_hook *grown = realloc(pool->hooks, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&pool->lock);
            errno = ENOMEM;
            return -1;
        }
        pool->hooks = grown;
        pool->hooks_cap = cap;
    }
    pool->hooks[pool->nhooks++] = (struct offload_hook){init, fini, arg};
    /* Idle workers run the new init now rather than at their next task. */
    pool->generation++;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int co_offload_set_threads(unsigned n)
{
    if (n == 0 || n > OFFLOAD_MAX_THREADS) {
        errno = EINVAL;
        return -1;
    }
    struct offload_pool *pool = &offload_pools[OFFLOAD_APP];
    pthread_mutex_lock(&pool->lock);
    int busy = pool->started > 0;
    if (!busy)
        pool->nthreads = n;
    pthread_mutex_unlock(&pool->lock);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}
