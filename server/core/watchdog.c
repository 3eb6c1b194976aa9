/* The hub-block detector (see watchdog.h). */
#include "core/watchdog.h"

#include <errno.h>
#include <execinfo.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

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
/* How long a crashing thread waits for the watchdog thread's report. */
#define WATCHDOG_CRASH_WAIT_MS 2000

/* The capture handshake: the watchdog asks, the handler runs then is
 * done; a request nobody took in time is withdrawn (ASKED -> IDLE). */
enum { CAP_IDLE, CAP_ASKED, CAP_RUNNING, CAP_DONE };
/* How the current episode was handled. */
enum { EPISODE_NONE, EPISODE_QUIET, EPISODE_LOGGED };

static struct {
    pthread_mutex_t life; /* serializes starting and stopping the thread */
    pthread_mutex_t lock; /* the list, and every hub's watchdog-only part */
    int wake_fd;          /* eventfd: a crash to report, or stop */
    pthread_t thread;
    int running, stop;
    struct watchdog_hub *hubs;
} watchdog = {.life = PTHREAD_MUTEX_INITIALIZER,
              .lock = PTHREAD_MUTEX_INITIALIZER,
              .wake_fd = -1};

/* The crash handshake: the crashing thread captures, posts and waits; the
 * watchdog thread logs. One crash per process: a second thread crashing
 * meanwhile waits for the first report, then dies. */
enum { CRASH_IDLE, CRASH_CAPTURING, CRASH_POSTED, CRASH_LOGGED };

/* A crash, captured in the handler (static: no allocation there). */
static struct {
    int state;
    int sig, code;
    pid_t sender; /* for a signal sent by kill() */
    void *addr, *pc;
    int depth;
    void *frames[WATCHDOG_FRAMES];
    char what[WATCHDOG_WHAT];
    char others[WATCHDOG_OTHERS];
    unsigned nothers;
    int on_hub;
} watchdog_crash;

static int64_t watchdog_threshold_ms, watchdog_timeout_ms;
static int watchdog_crash_on;
static struct watchdog_shared *watchdog_shared_next;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;
static int watchdog_install_err;
static struct sigaction watchdog_prev;

void watchdog__set_threshold(int64_t ms)
{
    watchdog_threshold_ms = ms > 0 ? ms : 0;
}

void watchdog__set_timeout(int64_t ms)
{
    watchdog_timeout_ms = ms > 0 ? ms : 0;
}

void watchdog__set_shared(struct watchdog_shared *shared)
{
    watchdog_shared_next = shared;
}

void watchdog__set_crash_reports(int on)
{
    watchdog_crash_on = on;
}

void watchdog__set_requests_fn(struct hub *hub, watchdog_requests_fn fn,
                               void *arg)
{
    hub->watchdog.requests_arg = arg;
    hub->watchdog.requests = fn;
}

/* Whether hubs need the watchdog thread. */
static int watchdog_wanted(void)
{
    return watchdog_threshold_ms > 0 || watchdog_timeout_ms > 0 ||
           watchdog_crash_on;
}

/* ---- the hub's side: heartbeat and signal handler -------------------- */

/* Before the loop polls: asleep (odd) until the check watcher runs. */
static void watchdog_prepare_cb(struct ev_loop *loop, ev_prepare *p, int ev)
{
    (void)loop;
    (void)ev;
    struct watchdog_hub *w = list_entry(p, struct watchdog_hub, prepare);
    watchdog__beat(w, (*w->beatp & 1) ? 2 : 1);
}

/* After the poll, before any other callback: busy (even) again. */
static void watchdog_check_cb(struct ev_loop *loop, ev_check *c, int ev)
{
    (void)loop;
    (void)ev;
    struct watchdog_hub *w = list_entry(c, struct watchdog_hub, check);
    watchdog__beat(w, (*w->beatp & 1) ? 1 : 2);
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

/* The coroutine whose request co works for: co, or its nearest ancestor
 * with a description (a child it spawned runs for it). */
static const struct co *watchdog_owner(const struct co *co)
{
    const struct co *owner = co;
    for (int depth = 0; owner && !owner->describe && depth < 16; depth++)
        owner = owner->parent;
    return owner && owner->describe ? owner : co;
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
    if (__atomic_load_n(w->beatp, __ATOMIC_RELAXED) != w->capture_beat) {
        w->stale = 1;
    } else {
        w->pc = watchdog_pc(uctx);
        w->depth = backtrace(w->frames, WATCHDOG_FRAMES);
        watchdog_describe(hub->current, w->what, sizeof w->what);
        if (w->want_others && w->requests)
            w->requests(w->requests_arg, watchdog_owner(hub->current),
                        w->others, sizeof w->others, &w->nothers);
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

/* Asks the hub's thread for a backtrace of the blocked code (and, with
 * others, the list of the other requests). Returns 0 when the handler
 * answered (w->stale says whether it found the hub still blocked), -1 when
 * it did not in time. */
static int watchdog_capture(struct watchdog_hub *w, uint64_t beat, int others)
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
    w->want_others = others;
    w->others[0] = '\0';
    w->nothers = 0;
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
        /* a crashing thread blocks our signal and waits for its report */
        int crash = __atomic_load_n(&watchdog_crash.state, __ATOMIC_ACQUIRE) ==
                    CRASH_POSTED;
        if ((crash || waited >= WATCHDOG_CAPTURE_MS) &&
            __atomic_compare_exchange_n(&w->state, &asked, CAP_IDLE, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return -1; /* never delivered (the signal blocked?) */
        watchdog_sleep_ms(1);
    }
    return -1;
}

/* The first frame of the interrupted code: the interrupted instruction,
 * found below the handler's own frames and the signal trampoline. */
static int watchdog_first_frame(void *const *frames, int depth, const void *pc)
{
    for (int i = 0; pc && i < depth; i++)
        if (frames[i] == pc)
            return i;
    return depth > 2 ? 2 : depth;
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

/* Appends "; backtrace:" and the named frames from the interrupted one. */
static size_t watchdog_add_frames(char *msg, size_t n, void *const *frames,
                                  int depth, const void *pc)
{
    n = watchdog_addf(msg, n, "; backtrace:");
    int first = watchdog_first_frame(frames, depth, pc);
    for (int i = first; i < depth; i++) {
        if (i - first == WATCHDOG_SHOW_FRAMES) {
            n = watchdog_addf(msg, n, "\n    ... %d more frames", depth - i);
            break;
        }
        char frame[256];
        symtab__format(frames[i], i > first, frame, sizeof frame);
        n = watchdog_addf(msg, n, "\n    #%-2d %s", i - first, frame);
    }
    return n;
}

/* Logs one warning: how long, what (app and request), the backtrace. */
static void watchdog_report(struct watchdog_hub *w, uint64_t beat,
                            int64_t blocked_ms)
{
    char msg[WATCHDOG_REPORT];
    int captured = watchdog_capture(w, beat, 0) == 0 && !w->stale;
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
    watchdog_add_frames(msg, n, w->frames, w->depth, w->pc);
    log_warn("%s", msg);
}

/* The last report of a hub blocked past --timeout: its supervisor kills
 * the process next (as soon as `reported` says this is logged). */
static void watchdog_report_timeout(struct watchdog_hub *w, uint64_t beat,
                                    int64_t blocked_ms)
{
    char msg[WATCHDOG_REPORT];
    int captured = watchdog_capture(w, beat, 1) == 0 && !w->stale;
    unsigned held = __atomic_load_n(&w->shared->requests, __ATOMIC_RELAXED);
    size_t n = watchdog_addf(
        msg, 0,
        "hub blocked for %lld ms, past --timeout (%lld ms), in %s: the "
        "master kills this worker, with the %u requests it holds",
        (long long)blocked_ms, (long long)watchdog_timeout_ms,
        captured && w->what[0] ? w->what : "(unknown)", held);
    if (!captured) {
        watchdog_addf(msg, n, "; no backtrace: %s",
                      w->stale ? "the hub moved on first"
                               : "its thread did not answer the signal");
    } else {
        if (w->nothers)
            n = watchdog_addf(msg, n, " (cut short with it: %s)", w->others);
        watchdog_add_frames(msg, n, w->frames, w->depth, w->pc);
    }
    log_error("%s", msg);
    __atomic_store_n(&w->shared->reported, beat, __ATOMIC_RELEASE);
}

/* One look at one hub: a beat unchanged and even for the threshold is a
 * blocked episode, reported once (rate-limited); a change ends it. Past
 * --timeout, a published hub gets its last report. */
static void watchdog_check(struct watchdog_hub *w, int64_t now, uint64_t beat)
{
    if (beat != w->seen_beat || (beat & 1)) {
        if (w->episode == EPISODE_LOGGED)
            log_warn("hub unblocked after %lld ms: %s",
                     (long long)(now - w->seen_at), w->episode_what);
        w->episode = EPISODE_NONE;
        w->seen_beat = beat;
        /* the hub stamped this beat when it reached it (this stamp or a
         * later one's: never earlier, so no block is overstated) */
        int64_t at = __atomic_load_n(&w->beat_ms, __ATOMIC_RELAXED);
        w->seen_at = at < now ? at : now;
        return;
    }
    if (watchdog_timeout_ms > 0 && w->shared && w->timeout_beat != beat &&
        now - w->seen_at >= watchdog_timeout_ms) {
        w->timeout_beat = beat;
        watchdog_report_timeout(w, beat, now - w->seen_at);
        return;
    }
    if (watchdog_threshold_ms <= 0 || w->episode != EPISODE_NONE ||
        now - w->seen_at < watchdog_threshold_ms)
        return;
    uint64_t episodes = __atomic_add_fetch(&w->episodes, 1, __ATOMIC_RELAXED);
    /* published now, not when the hub comes back: a hub killed for
     * --timeout never does, and its episode still counts */
    if (w->shared)
        __atomic_store_n(&w->shared->episodes, episodes, __ATOMIC_RELAXED);
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

/* How long the thread may sleep after a look (ms). Each beat is stamped
 * (heartbeat.h), so a look measures a block from where it began, not from
 * the look that first saw its beat: the next look is due when an awake
 * hub's current beat would turn into a block (a block is then reported a
 * threshold after it began, give or take a clock tick), and a hub asleep in
 * its poll cannot block before it wakes, so while every hub sleeps the
 * thread looks every 2 thresholds (a block that begins just after a look
 * is reported at most 2 thresholds after it began; gevent's monitor: 1 to
 * 2). Each look wakes this thread, and on this VM a wakeup costs about
 * 50 us of CPU: looking every threshold and every half threshold while a
 * hub was awake (before the stamps) cost 1,000 waiting requests a second
 * 0.55 us each. */
/* When the beat w was last seen at turns into a block of limit ms, if
 * that is sooner than *wait from now. */
static void watchdog_due(const struct watchdog_hub *w, int64_t limit,
                         int64_t now, int64_t *wait)
{
    if (w->seen_at + limit - now < *wait)
        *wait = w->seen_at + limit - now;
}

static int64_t watchdog_next_look_ms(int64_t now)
{
    int64_t wait = 1000;
    if (watchdog_threshold_ms > 0 && 2 * watchdog_threshold_ms < wait)
        wait = 2 * watchdog_threshold_ms;
    if (watchdog_timeout_ms > 0 && watchdog_timeout_ms / 4 < wait)
        wait = watchdog_timeout_ms / 4;
    for (struct watchdog_hub *w = watchdog.hubs; w; w = w->next) {
        if (w->seen_beat & 1)
            continue;
        if (watchdog_threshold_ms > 0 && w->episode == EPISODE_NONE)
            watchdog_due(w, watchdog_threshold_ms, now, &wait);
        if (watchdog_timeout_ms > 0 && w->shared &&
            w->timeout_beat != w->seen_beat)
            watchdog_due(w, watchdog_timeout_ms, now, &wait);
    }
    return wait < 1 ? 1 : wait;
}

/* ---- crash reports --------------------------------------------------- */

static const char *watchdog_signame(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    default:
        return "signal";
    }
}

/* What si_code says about the fault, or NULL. */
static const char *watchdog_sigcode(int sig, int code)
{
    if (code == SI_USER)
        return "sent by kill()";
    if (code == SI_TKILL)
        return sig == SIGABRT ? "abort() or raise()" : "sent by tgkill()";
    if (code <= 0)
        return "sent by another process or thread";
    switch (sig) {
    case SIGSEGV:
        return code == SEGV_MAPERR   ? "address not mapped"
               : code == SEGV_ACCERR ? "access not permitted"
                                     : NULL;
    case SIGBUS:
        return code == BUS_ADRALN   ? "misaligned address"
               : code == BUS_ADRERR ? "nonexistent physical address"
               : code == BUS_OBJERR ? "object error (a truncated file?)"
                                    : NULL;
    case SIGFPE:
        return code == FPE_INTDIV   ? "integer divide by zero"
               : code == FPE_INTOVF ? "integer overflow"
                                    : "floating-point exception";
    case SIGILL:
        return "illegal instruction";
    }
    return NULL;
}

/* Logs the captured crash, named: on the watchdog thread. */
static void watchdog_report_crash(void)
{
    char msg[WATCHDOG_REPORT];
    const char *code =
        watchdog_sigcode(watchdog_crash.sig, watchdog_crash.code);
    size_t n =
        watchdog_addf(msg, 0, "crash: signal %d (%s%s%s)", watchdog_crash.sig,
                      watchdog_signame(watchdog_crash.sig), code ? ", " : "",
                      code ? code : "");
    if (watchdog_crash.code > 0)
        n = watchdog_addf(msg, n, " at address 0x%lx",
                          (unsigned long)(uintptr_t)watchdog_crash.addr);
    else if (watchdog_crash.code == SI_USER)
        n = watchdog_addf(msg, n, " from pid %d", (int)watchdog_crash.sender);
    n = watchdog_addf(msg, n, " in %s", watchdog_crash.what);
    watchdog_add_frames(msg, n, watchdog_crash.frames, watchdog_crash.depth,
                        watchdog_crash.pc);
    log_error("%s", msg);
    if (watchdog_crash.nothers)
        log_error("crash: %u other requests cut short: %s",
                  watchdog_crash.nothers, watchdog_crash.others);
    else if (watchdog_crash.on_hub)
        log_error("crash: no other request was in flight on this worker");
}

/* The async-signal-safe pieces of the raw report. */
static size_t watchdog_put_num(char *buf, size_t len, size_t n, uint64_t v,
                               unsigned base)
{
    char d[24];
    size_t i = sizeof d;
    d[--i] = '\0';
    do
        d[--i] = "0123456789abcdef"[v % base];
    while ((v /= base) && i > 0);
    if (base == 16)
        n = watchdog_put(buf, len, n, "0x");
    return watchdog_put(buf, len, n, d + i);
}

static void watchdog_write(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(log__fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* The report without the watchdog thread: no names, raw addresses (each
 * frame as its object+offset, for addr2line), async-signal-safe only. */
static void watchdog_report_crash_raw(void)
{
    static char line[WATCHDOG_OTHERS + 512];
    size_t n = watchdog_put(line, sizeof line, 0, "coserve[");
    n = watchdog_put_num(line, sizeof line, n, (uint64_t)getpid(), 10);
    n = watchdog_put(line, sizeof line, n, "] error: crash: signal ");
    n = watchdog_put_num(line, sizeof line, n, (uint64_t)watchdog_crash.sig,
                         10);
    n = watchdog_put(line, sizeof line, n, " (");
    n = watchdog_put(line, sizeof line, n,
                     watchdog_signame(watchdog_crash.sig));
    const char *code =
        watchdog_sigcode(watchdog_crash.sig, watchdog_crash.code);
    if (code) {
        n = watchdog_put(line, sizeof line, n, ", ");
        n = watchdog_put(line, sizeof line, n, code);
    }
    n = watchdog_put(line, sizeof line, n, ")");
    if (watchdog_crash.code > 0) {
        n = watchdog_put(line, sizeof line, n, " at address ");
        n = watchdog_put_num(line, sizeof line, n,
                             (uint64_t)(uintptr_t)watchdog_crash.addr, 16);
    }
    n = watchdog_put(line, sizeof line, n, " in ");
    n = watchdog_put(line, sizeof line, n, watchdog_crash.what);
    n = watchdog_put(line, sizeof line, n,
                     "; raw backtrace (no watchdog thread answered):\n");
    watchdog_write(line, n);
    int first = watchdog_first_frame(watchdog_crash.frames,
                                     watchdog_crash.depth, watchdog_crash.pc);
    backtrace_symbols_fd(watchdog_crash.frames + first,
                         watchdog_crash.depth - first, log__fd);
    if (watchdog_crash.nothers) {
        n = watchdog_put(line, sizeof line, 0, "coserve[");
        n = watchdog_put_num(line, sizeof line, n, (uint64_t)getpid(), 10);
        n = watchdog_put(line, sizeof line, n, "] error: crash: ");
        n = watchdog_put_num(line, sizeof line, n, watchdog_crash.nothers, 10);
        n = watchdog_put(line, sizeof line, n, " other requests cut short: ");
        n = watchdog_put(line, sizeof line, n, watchdog_crash.others);
        n = watchdog_put(line, sizeof line, n, "\n");
        watchdog_write(line, n);
    }
}

void watchdog__crash(int sig, siginfo_t *si, void *uctx)
{
    int idle = CRASH_IDLE;
    if (!__atomic_compare_exchange_n(&watchdog_crash.state, &idle,
                                     CRASH_CAPTURING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        /* another thread crashed first: let its report out, then die */
        for (int i = 0; i < WATCHDOG_CRASH_WAIT_MS + 500 &&
                        __atomic_load_n(&watchdog_crash.state,
                                        __ATOMIC_ACQUIRE) != CRASH_LOGGED;
             i++)
            watchdog_sleep_ms(1);
        return;
    }
    struct hub *hub = hub__self;
    watchdog_crash.sig = sig;
    watchdog_crash.code = si->si_code;
    watchdog_crash.sender = si->si_pid;
    watchdog_crash.addr = si->si_addr;
    watchdog_crash.pc = watchdog_pc(uctx);
    watchdog_crash.depth = backtrace(watchdog_crash.frames, WATCHDOG_FRAMES);
    watchdog_crash.on_hub = hub != NULL;
    if (hub)
        watchdog_describe(hub->current, watchdog_crash.what,
                          sizeof watchdog_crash.what);
    else
        watchdog_put(watchdog_crash.what, sizeof watchdog_crash.what, 0,
                     "a thread that runs no hub (an offload or library "
                     "thread)");
    /* Last, the riskiest: walking the http layer's lists. A fault in here
     * kills the process at once (the signal is blocked in its handler). */
    if (hub && hub->watchdog.requests)
        hub->watchdog.requests(
            hub->watchdog.requests_arg, watchdog_owner(hub->current),
            watchdog_crash.others, sizeof watchdog_crash.others,
            &watchdog_crash.nothers);
    int fd = watchdog.wake_fd;
    int thread = __atomic_load_n(&watchdog.running, __ATOMIC_ACQUIRE) &&
                 fd >= 0 && !pthread_equal(pthread_self(), watchdog.thread);
    __atomic_store_n(&watchdog_crash.state, CRASH_POSTED, __ATOMIC_RELEASE);
    if (thread) {
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof one);
        (void)w;
        for (int i = 0; i < WATCHDOG_CRASH_WAIT_MS &&
                        __atomic_load_n(&watchdog_crash.state,
                                        __ATOMIC_ACQUIRE) != CRASH_LOGGED;
             i++)
            watchdog_sleep_ms(1);
    }
    /* Not logged in time (not posted, or stuck formatting: inside a lock
     * the crashed code held?): raw addresses, written from here. */
    if (__atomic_exchange_n(&watchdog_crash.state, CRASH_LOGGED,
                            __ATOMIC_ACQ_REL) != CRASH_LOGGED)
        watchdog_report_crash_raw();
}

/* On the watchdog thread: a posted crash, if any, is logged. Claims it
 * first (POSTED -> CAPTURING): the crashing thread writes its raw report
 * only if this one is not out when its wait ends. */
static void watchdog_take_crash(void)
{
    int posted = CRASH_POSTED;
    if (!__atomic_compare_exchange_n(&watchdog_crash.state, &posted,
                                     CRASH_CAPTURING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    watchdog_report_crash();
    __atomic_store_n(&watchdog_crash.state, CRASH_LOGGED, __ATOMIC_RELEASE);
}

/* ---- the thread ------------------------------------------------------ */

/* Gives the thread an fd table of its own, holding only stdio, its
 * eventfd and the error log. While a second thread shares the hub's
 * table, every fd system call of the hub (a read, a send, one per request
 * and more) takes and drops a reference on its file: the kernel skips
 * that only for a table with one user (offload threads, when an app uses
 * them, share it again). The thread needs no other fd (symtab.c opens
 * what it reads in this table, and closes it without the hooks, whose fd
 * table describes the hubs'), and keeping none means a socket the hub
 * closes is closed (a listening socket stays in none of its copies). The
 * error log must not move once a hub exists (errcap__start runs before).
 * Where the kernel lacks close_range, the table stays shared: slower, no
 * less right. */
static void watchdog_own_fds(void)
{
    /* a no-op close_range: does this kernel have it? */
    if (close_range(~0u, ~0u, 0) < 0 || unshare(CLONE_FILES) < 0)
        return;
    unsigned keep[2] = {(unsigned)watchdog.wake_fd, (unsigned)log__fd};
    if (keep[0] > keep[1]) {
        unsigned t = keep[0];
        keep[0] = keep[1];
        keep[1] = t;
    }
    unsigned from = 3; /* stdio stays: malloc's and ASan's last words */
    for (int i = 0; i < 2; i++) {
        if (keep[i] < from)
            continue;
        if (keep[i] > from)
            close_range(from, keep[i] - 1, 0);
        from = keep[i] + 1;
    }
    close_range(from, ~0u, 0);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    watchdog_own_fds();
    int64_t wait = 1;
    pthread_mutex_lock(&watchdog.lock);
    while (!watchdog.stop) {
        pthread_mutex_unlock(&watchdog.lock);
        struct pollfd p = {.fd = watchdog.wake_fd, .events = POLLIN};
        if (poll(&p, 1, (int)wait) > 0) {
            uint64_t v;
            ssize_t r = read(watchdog.wake_fd, &v, sizeof v);
            (void)r;
        }
        watchdog_take_crash();
        pthread_mutex_lock(&watchdog.lock);
        if (watchdog.stop)
            break;
        int64_t now = watchdog__clock_ms();
        for (struct watchdog_hub *w = watchdog.hubs; w; w = w->next)
            watchdog_check(w, now, __atomic_load_n(w->beatp, __ATOMIC_ACQUIRE));
        wait = watchdog_next_look_ms(now);
    }
    pthread_mutex_unlock(&watchdog.lock);
    return NULL;
}

/* Starts the thread with every signal blocked: signals are for the hubs. */
static int watchdog_start(void)
{
    watchdog.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (watchdog.wake_fd < 0)
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    watchdog.stop = 0;
    int rc = pthread_create(&watchdog.thread, NULL, watchdog_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        close(watchdog.wake_fd);
        watchdog.wake_fd = -1;
        errno = rc;
        return -1;
    }
    pthread_setname_np(watchdog.thread, "coserve-watch");
    __atomic_store_n(&watchdog.running, 1, __ATOMIC_RELEASE);
    return 0;
}

/* ---- registration ---------------------------------------------------- */

int watchdog__hub_init(struct hub *hub)
{
    struct watchdog_hub *w = &hub->watchdog;
    w->beatp = &w->beat;
    if (watchdog_shared_next) {
        w->shared = watchdog_shared_next;
        watchdog_shared_next = NULL;
        w->beatp = &w->shared->beat;
        w->timeout_beat =
            __atomic_load_n(&w->shared->reported, __ATOMIC_RELAXED);
    }
    if (!watchdog_wanted())
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
        w->seen_beat = __atomic_load_n(w->beatp, __ATOMIC_RELAXED);
        w->seen_at = watchdog__clock_ms();
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
    if (w->shared) {
        /* odd for good: what runs after the hub is not a blocked hub */
        __atomic_store_n(&w->shared->beat, w->shared->beat | 1,
                         __ATOMIC_RELAXED);
        __atomic_store_n(&w->shared->requests, 0, __ATOMIC_RELAXED);
    }
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
        uint64_t one = 1;
        ssize_t wr = write(watchdog.wake_fd, &one, sizeof one);
        (void)wr;
    }
    pthread_mutex_unlock(&watchdog.lock);
    if (last) {
        pthread_join(watchdog.thread, NULL);
        __atomic_store_n(&watchdog.running, 0, __ATOMIC_RELEASE);
        close(watchdog.wake_fd);
        watchdog.wake_fd = -1;
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
