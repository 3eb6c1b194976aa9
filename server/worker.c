/*
 * A worker process's life around the HTTP front end: its signals, its
 * stop, and --max-requests recycling.
 *
 * Signals arrive on any thread at any time: the handler only records them
 * and pokes the hub through an ev_async (async-signal-safe), and the hub's
 * main coroutine acts on them in its own time. http/ is told only "start",
 * "stop with this grace" and "reopen the log"; it tells the worker each
 * finished request through cfg.on_request_done.
 */
#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hub.h"
#include "core/log.h"
#include "http/server.h"

enum { WORKER_SIG_STOP = 1, WORKER_SIG_FAST = 2, WORKER_SIG_REOPEN = 4 };

static struct {
    struct ev_loop *loop;
    ev_async *async;
    int pending;
} worker_signal;

static void worker_on_signal(int signo)
{
    int bit = signo == SIGQUIT   ? WORKER_SIG_FAST
              : signo == SIGUSR1 ? WORKER_SIG_REOPEN
                                 : WORKER_SIG_STOP;
    __atomic_fetch_or(&worker_signal.pending, bit, __ATOMIC_SEQ_CST);
    if (worker_signal.async)
        ev_async_send(worker_signal.loop, worker_signal.async);
}

struct worker {
    struct http_config cfg;
    struct worker_config wc;
    const int *listen_fds;
    unsigned nlisten;
    struct http_server srv;
    co_event_t *stop;
    ev_async signal_async;
    uint64_t served;     /* requests, for --max-requests */
    uint64_t max_served; /* --max-requests plus this worker's jitter (0: off) */
    int serving;         /* http__start has run */
    int reopen_due;      /* USR1 came before it: reopen once serving */
};

static void worker_signal_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *wk = list_entry(w, struct worker, signal_async);
    int pending =
        __atomic_exchange_n(&worker_signal.pending, 0, __ATOMIC_SEQ_CST);
    if ((pending & WORKER_SIG_REOPEN) && !wk->serving)
        wk->reopen_due = 1; /* the apps' init yielded: srv is not set up */
    else if (pending & WORKER_SIG_REOPEN)
        http__reopen_log(&wk->srv, wk->wc.access_log_path);
    if (pending & WORKER_SIG_FAST)
        wk->wc.grace_ms = 0;
    if (pending & (WORKER_SIG_STOP | WORKER_SIG_FAST))
        co_event_set(wk->stop);
}

/* http's per-request hook: the Nth request begins the graceful stop (the
 * master starts a replacement when this worker exits). */
static void worker_request_done(void *ctx)
{
    struct worker *wk = ctx;
    if (++wk->served == wk->max_served) {
        log_info("served %llu requests (--max-requests): recycling",
                 (unsigned long long)wk->served);
        co_event_set(wk->stop);
    }
}

static const int worker_sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1};
#define WORKER_NSIGS (sizeof worker_sigs / sizeof *worker_sigs)

static void worker_signals_on(struct worker *wk, struct ev_loop *loop)
{
    worker_signal.loop = loop;
    worker_signal.async = &wk->signal_async;
    struct sigaction sa = {.sa_handler = worker_on_signal};
    sigemptyset(&sa.sa_mask);
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < WORKER_NSIGS; i++) {
        sigaction(worker_sigs[i], &sa, NULL);
        sigaddset(&set, worker_sigs[i]);
    }
    /* A master forks workers with these blocked, so a TERM that arrives
     * while a worker starts waits here instead of killing it. */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Ignored, not back to the default: a worker that is already on its way
 * out (retired by a reload) still gets the master's TERM when a stop
 * begins, and must not die of it (the master would count a worker killed
 * by a signal as a failed stop). */
static void worker_signals_off(void)
{
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < WORKER_NSIGS; i++)
        sigaction(worker_sigs[i], &sa, NULL);
    worker_signal.async = NULL;
}

/* The hub's main coroutine: the struct lives on its stack. */
static void *worker_hub_main(void *arg)
{
    struct worker *wk = arg;
    struct ev_loop *loop = hub__require("worker__run")->loop;
    wk->stop = co_event_new();
    ev_async_init(&wk->signal_async, worker_signal_cb);
    ev_async_start(loop, &wk->signal_async);
    ev_unref(loop); /* the signal watcher alone keeps no loop alive */
    if (wk->wc.max_requests) {
        srand((unsigned)getpid() ^ (unsigned)co_now());
        wk->max_served =
            wk->wc.max_requests +
            (wk->wc.max_requests_jitter
                 ? (uint64_t)rand() % (wk->wc.max_requests_jitter + 1)
                 : 0);
        wk->cfg.on_request_done = worker_request_done;
        wk->cfg.hooks_ctx = wk;
    }
    worker_signals_on(wk, loop);

    if (wk->wc.on_start)
        wk->wc.on_start(wk->wc.ctx);
    http__start(&wk->srv, &wk->cfg, wk->listen_fds, wk->nlisten);
    wk->serving = 1;
    if (wk->reopen_due)
        http__reopen_log(&wk->srv, wk->wc.access_log_path);
    co_event_wait(wk->stop, -1);
    log_info("stopping (grace %lld ms for %u requests)",
             (long long)wk->wc.grace_ms, wk->srv.active);
    if (wk->wc.on_drain)
        wk->wc.on_drain(wk->wc.ctx, wk->wc.grace_ms);
    http__stop(&wk->srv, wk->wc.grace_ms);
    if (wk->wc.on_stop)
        wk->wc.on_stop(wk->wc.ctx);

    worker_signals_off();
    ev_ref(loop);
    ev_async_stop(loop, &wk->signal_async);
    co_event_free(wk->stop);
    http__server_fini(&wk->srv);
    return NULL;
}

int worker__run(const struct http_config *cfg, const struct worker_config *wc,
                const int *listen_fds, unsigned nlisten)
{
    signal(SIGPIPE, SIG_IGN);
    struct worker wk;
    memset(&wk, 0, sizeof wk);
    wk.cfg = *cfg;
    wk.wc = *wc;
    wk.listen_fds = listen_fds;
    wk.nlisten = nlisten;
    return co_run(worker_hub_main, &wk, NULL);
}
