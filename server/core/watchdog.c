/* The hub-block detector (see watchdog.h). */
#include "core/watchdog.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "core/coro.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/symtab.h"

/* SIGURG: ignored by default, so a stray one is harmless, and unused by
 * servers (nobody sends TCP urgent data to a web server on purpose). */
#define WATCHDOG_SIGNAL SIGURG
/* At most one warning per hub per this many ms. */
#define WATCHDOG_RATE_MS 1000
/* How long the hub's thread has to answer the signal. */
#define WATCHDOG_CAPTURE_MS 1000
/* Frames printed; the blocked code and its callers down to the handler
 * are the first few. */
#define WATCHDOG_SHOW_FRAMES 24
/* Keeps a report within one log line's buffer (log.c: 2048 bytes). */
#define WATCHDOG_REPORT 1900

/* The capture handshake: the watchdog asks, the handler runs then is
 * done; a request nobody took in time is withdrawn (ASKED -> IDLE). */
enum { CAP_IDLE, CAP_ASKED, CAP_RUNNING, CAP_DONE };
/* How the current episode was handled. */
enum { EPISODE_NONE, EPISODE_QUIET, EPISODE_LOGGED };

static struct {
    pthread_mutex_t life; /* serializes starting and stopping the thread */
    pthread_mutex_t lock; /* the list, and every hub's watchdog-only part */
    pthread_cond_t wake;
    pthread_t thread;
    int running, stop;
    struct watchdog_hub *hubs;
} watchdog = {.life = PTHREAD_MUTEX_INITIALIZER,
              .lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t watchdog_threshold_ms;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;
static int watchdog_install_err;
static struct sigaction watchdog_prev;

void watchdog__set_threshold(int64_t ms)
{
    watchdog_threshold_ms = ms > 0 ? ms : 0;
}

/* ---- the hub's side: heartbeat and signal handler -------------------- */

/* Before the loop polls: asleep (odd) until the check watcher runs. */
static void watchdog_prepare_cb(struct ev_loop *loop, ev_prepare *p, int ev)
{
    (void)loop;
    (void)ev;
    struct watchdog_hub *w = list_entry(p, struct watchdog_hub, prepare);
    watchdog__beat(w, (w->beat & 1) ? 2 : 1);
}

/* After the poll, before any other callback: busy (even) again. */
static void watchdog_check_cb(struct ev_loop *loop, ev_check *c, int ev)
{
    (void)loop;
    (void)ev;
    struct watchdog_hub *w = list_entry(c, struct watchdog_hub, check);
    watchdog__beat(w, (w->beat & 1) ? 1 : 2);
}

/* Appends s to buf (n bytes used of len), NUL-terminated, printable only.
 * Async-signal-safe. Returns the new n. */
static size_t watchdog_put(char *buf, size_t len, size_t n, const char *s)
{
    for (; *s && n + 1 < len; s++)
        buf[n++] = (*s >= 0x20 && *s != 0x7f) ? *s : '?';
    buf[n] = '\0';
    return n;
}

/* Appends "coroutine NAME" (or "coroutine co-ID") without printf. */
static size_t watchdog_put_co(char *buf, size_t len, size_t n,
                              const struct co *co)
{
    n = watchdog_put(buf, len, n, "coroutine ");
    if (co->name[0])
        return watchdog_put(buf, len, n, co->name);
    char id[24];
    size_t i = sizeof id;
    uint64_t v = co->id;
    id[--i] = '\0';
    do
        id[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i > 0);
    n = watchdog_put(buf, len, n, "co-");
    return watchdog_put(buf, len, n, id + i);
}

/* What the hub is running, from the signal handler: the coroutine's own
 * description (the http layer names the app and request) or, for a child
 * it spawned, the child and then its nearest described ancestor's. */
static void watchdog_describe(const struct co *co, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!co) {
        watchdog_put(buf, len, 0, "the hub itself (no coroutine running)");
        return;
    }
    const struct co *owner = co;
    for (int depth = 0; owner && !owner->describe && depth < 16; depth++)
        owner = owner->parent;
    size_t n = 0;
    if (owner != co) {
        n = watchdog_put_co(buf, len, 0, co);
        if (!owner || !owner->describe)
            return;
        n = watchdog_put(buf, len, n, ", child of ");
    }
    char raw[WATCHDOG_WHAT];
    size_t got = owner->describe(owner->describe_arg, raw, sizeof raw);
    raw[got < sizeof raw ? got : sizeof raw - 1] = '\0';
    watchdog_put(buf, len, n, raw);
}

/* The interrupted instruction, to find where the blocked code starts in
 * backtrace()'s frames (below the handler and the signal trampoline). */
static void *watchdog_pc(const void *uctx)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)uc->uc_mcontext.pc;
#else
    (void)uc;
    return NULL;
#endif
}

static void watchdog_chain(int sig, siginfo_t *si, void *uctx)
{
    if (watchdog_prev.sa_flags & SA_SIGINFO) {
        if (watchdog_prev.sa_sigaction)
            watchdog_prev.sa_sigaction(sig, si, uctx);
    } else if (watchdog_prev.sa_handler != SIG_DFL &&
               watchdog_prev.sa_handler != SIG_IGN) {
        watchdog_prev.sa_handler(sig);
    }
}

/* On the hub's thread, on its alternate stack, interrupting whatever
 * blocks it. Only async-signal-safe work: backtrace() (its first call,
 * which loads libgcc with malloc, happened in watchdog__hub_init), reads
 * and copies. The watchdog thread formats later. */
static void watchdog_on_signal(int sig, siginfo_t *si, void *uctx)
{
    int saved_errno = errno;
    struct hub *hub = hub__self;
    struct watchdog_hub *w = hub ? &hub->watchdog : NULL;
    int asked = CAP_ASKED;
    if (si->si_code != SI_TKILL || !w ||
        !__atomic_compare_exchange_n(&w->state, &asked, CAP_RUNNING, 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        watchdog_chain(sig, si, uctx);
        errno = saved_errno;
        return;
    }
    /* The hub may have moved on since the watchdog looked; then the stack
     * is no longer the blocked one (and may be mid-switch). */
    if (__atomic_load_n(&w->beat, __ATOMIC_RELAXED) != w->capture_beat) {
        w->stale = 1;
    } else {
        w->pc = watchdog_pc(uctx);
        w->depth = backtrace(w->frames, WATCHDOG_FRAMES);
        watchdog_describe(hub->current, w->what, sizeof w->what);
    }
    __atomic_store_n(&w->state, CAP_DONE, __ATOMIC_RELEASE);
    errno = saved_errno;
}

static void watchdog_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = watchdog_on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(WATCHDOG_SIGNAL, &sa, &watchdog_prev) < 0)
        watchdog_install_err = errno;
}

/* ---- the watchdog thread: capture, format, log ----------------------- */

static void watchdog_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Asks the hub's thread for a backtrace of the blocked code. Returns 0
 * when the handler answered (w->stale says whether it found the hub still
 * blocked), -1 when it did not in time. */
static int watchdog_capture(struct watchdog_hub *w, uint64_t beat)
{
    /* A handler that answered after we gave up is done with the buffers
     * now; one still running keeps them: no capture this time. */
    int late = CAP_DONE;
    __atomic_compare_exchange_n(&w->state, &late, CAP_IDLE, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != CAP_IDLE)
        return -1;
    w->capture_beat = beat;
    w->stale = 0;
    w->depth = 0;
    w->pc = NULL;
    w->what[0] = '\0';
    __atomic_store_n(&w->state, CAP_ASKED, __ATOMIC_RELEASE);
    if (pthread_kill(w->thread, WATCHDOG_SIGNAL) != 0) {
        __atomic_store_n(&w->state, CAP_IDLE, __ATOMIC_RELEASE);
        return -1;
    }
    for (int waited = 0; waited < 2 * WATCHDOG_CAPTURE_MS; waited++) {
        if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == CAP_DONE) {
            __atomic_store_n(&w->state, CAP_IDLE, __ATOMIC_RELEASE);
            return 0;
        }
        int asked = CAP_ASKED;
        if (waited >= WATCHDOG_CAPTURE_MS &&
            __atomic_compare_exchange_n(&w->state, &asked, CAP_IDLE, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return -1; /* never delivered (the signal blocked?) */
        watchdog_sleep_ms(1);
    }
    return -1;
}

/* The first frame of the blocked code: the interrupted instruction, found
 * below the handler's own frames and the signal trampoline. */
static int watchdog_first_frame(const struct watchdog_hub *w)
{
    for (int i = 0; w->pc && i < w->depth; i++)
        if (w->frames[i] == w->pc)
            return i;
    return w->depth > 2 ? 2 : w->depth;
}

/* Appends printf output to msg (n bytes used), never past its end. */
static size_t watchdog_addf(char *msg, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t watchdog_addf(char *msg, size_t n, const char *fmt, ...)
{
    if (n >= WATCHDOG_REPORT - 1)
        return n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg + n, WATCHDOG_REPORT - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return n;
    n += (size_t)m;
    return n < WATCHDOG_REPORT ? n : WATCHDOG_REPORT - 1;
}

/* Logs one warning: how long, what (app and request), the backtrace. */
static void watchdog_report(struct watchdog_hub *w, uint64_t beat,
                            int64_t blocked_ms)
{
    char msg[WATCHDOG_REPORT];
    int captured = watchdog_capture(w, beat) == 0 && !w->stale;
    snprintf(w->episode_what, sizeof w->episode_what, "%s",
             captured && w->what[0] ? w->what : "(unknown)");
    size_t n = watchdog_addf(msg, 0,
                             "hub blocked for %lld ms so far (threshold %lld "
                             "ms) in %s",
                             (long long)blocked_ms,
                             (long long)watchdog_threshold_ms, w->episode_what);
    if (w->quiet)
        n = watchdog_addf(msg, n,
                          " (%llu more blocked episodes not logged since the "
                          "last warning)",
                          (unsigned long long)w->quiet);
    if (!captured) {
        watchdog_addf(msg, n, "; no backtrace: %s",
                      w->stale ? "the hub moved on first"
                               : "its thread did not answer the signal");
        log_warn("%s", msg);
        return;
    }
    n = watchdog_addf(msg, n, "; backtrace:");
    int first = watchdog_first_frame(w);
    for (int i = first; i < w->depth; i++) {
        if (i - first == WATCHDOG_SHOW_FRAMES) {
            n = watchdog_addf(msg, n, "\n    ... %d more frames", w->depth - i);
            break;
        }
        char frame[256];
        symtab__format(w->frames[i], i > first, frame, sizeof frame);
        n = watchdog_addf(msg, n, "\n    #%-2d %s", i - first, frame);
    }
    log_warn("%s", msg);
}

/* One look at one hub: a beat unchanged and even for the threshold is a
 * blocked episode, reported once (rate-limited); a change ends it. */
static void watchdog_check(struct watchdog_hub *w, int64_t now)
{
    uint64_t beat = __atomic_load_n(&w->beat, __ATOMIC_RELAXED);
    if (beat != w->seen_beat || (beat & 1)) {
        if (w->episode == EPISODE_LOGGED)
            log_warn("hub unblocked after %lld ms: %s",
                     (long long)(now - w->seen_at), w->episode_what);
        w->episode = EPISODE_NONE;
        w->seen_beat = beat;
        w->seen_at = now;
        return;
    }
    if (w->episode != EPISODE_NONE || now - w->seen_at < watchdog_threshold_ms)
        return;
    __atomic_add_fetch(&w->episodes, 1, __ATOMIC_RELAXED);
    if (w->warned && now - w->warned_at < WATCHDOG_RATE_MS) {
        w->episode = EPISODE_QUIET;
        w->quiet++;
        __atomic_add_fetch(&w->unlogged, 1, __ATOMIC_RELAXED);
        return;
    }
    w->episode = EPISODE_LOGGED;
    w->warned = 1;
    w->warned_at = now;
    watchdog_report(w, beat, now - w->seen_at);
    w->quiet = 0;
}

/* A few looks per threshold: a block is seen between 1 and 1.25
 * thresholds after it began. */
static int64_t watchdog_tick_ms(void)
{
    int64_t t = watchdog_threshold_ms / 4;
    return t < 1 ? 1 : t > 250 ? 250 : t;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watchdog.lock);
    while (!watchdog.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + watchdog_tick_ms() * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&watchdog.wake, &watchdog.lock, &ts);
        if (watchdog.stop)
            break;
        int64_t now = co_now();
        for (struct watchdog_hub *w = watchdog.hubs; w; w = w->next)
            watchdog_check(w, now);
    }
    pthread_mutex_unlock(&watchdog.lock);
    return NULL;
}

/* Starts the thread with every signal blocked: signals are for the hubs. */
static int watchdog_start(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watchdog.wake, &attr);
    pthread_condattr_destroy(&attr);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    watchdog.stop = 0;
    int rc = pthread_create(&watchdog.thread, NULL, watchdog_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_cond_destroy(&watchdog.wake);
        errno = rc;
        return -1;
    }
    pthread_setname_np(watchdog.thread, "coserve-watch");
    watchdog.running = 1;
    return 0;
}

/* ---- registration ---------------------------------------------------- */

int watchdog__hub_init(struct hub *hub)
{
    struct watchdog_hub *w = &hub->watchdog;
    if (watchdog_threshold_ms <= 0)
        return 0;
    pthread_once(&watchdog_once, watchdog_install);
    if (watchdog_install_err) {
        errno = watchdog_install_err;
        return -1;
    }
    /* backtrace() loads libgcc's unwinder, with malloc, on first use: do
     * that here, never in the signal handler. */
    void *prime[2];
    backtrace(prime, 2);
    w->thread = pthread_self();
    pthread_mutex_lock(&watchdog.life);
    pthread_mutex_lock(&watchdog.lock);
    int rc = watchdog.running ? 0 : watchdog_start();
    if (rc == 0) {
        w->seen_beat = __atomic_load_n(&w->beat, __ATOMIC_RELAXED);
        w->seen_at = co_now();
        w->next = watchdog.hubs;
        watchdog.hubs = w;
        w->on = 1;
    }
    pthread_mutex_unlock(&watchdog.lock);
    pthread_mutex_unlock(&watchdog.life);
    if (rc < 0)
        return -1;
    /* The poll's edges, outermost: the prepare runs after every other
     * prepare callback (the access log's flush is work, not sleep), the
     * check before any other callback. Unreferenced: they keep no loop
     * alive. */
    ev_prepare_init(&w->prepare, watchdog_prepare_cb);
    ev_set_priority(&w->prepare, EV_MINPRI);
    ev_prepare_start(hub->loop, &w->prepare);
    ev_unref(hub->loop);
    ev_check_init(&w->check, watchdog_check_cb);
    ev_set_priority(&w->check, EV_MAXPRI);
    ev_check_start(hub->loop, &w->check);
    ev_unref(hub->loop);
    return 0;
}

void watchdog__hub_fini(struct hub *hub)
{
    struct watchdog_hub *w = &hub->watchdog;
    if (!w->on)
        return;
    pthread_mutex_lock(&watchdog.life);
    pthread_mutex_lock(&watchdog.lock);
    for (struct watchdog_hub **p = &watchdog.hubs; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    w->on = 0;
    int last = watchdog.hubs == NULL;
    if (last) {
        watchdog.stop = 1;
        pthread_cond_signal(&watchdog.wake);
    }
    pthread_mutex_unlock(&watchdog.lock);
    if (last) {
        pthread_join(watchdog.thread, NULL);
        pthread_cond_destroy(&watchdog.wake);
        watchdog.running = 0;
        symtab__reset();
    }
    pthread_mutex_unlock(&watchdog.life);
    if (w->episodes)
        log_info("watchdog: %llu blocked episodes, %llu not logged (at most "
                 "one warning per second)",
                 (unsigned long long)w->episodes,
                 (unsigned long long)w->unlogged);
    ev_ref(hub->loop);
    ev_prepare_stop(hub->loop, &w->prepare);
    ev_ref(hub->loop);
    ev_check_stop(hub->loop, &w->check);
}
