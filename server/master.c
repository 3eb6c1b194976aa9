/* The master process (see master.h). */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "sockets.h"

#define MASTER_MAX_WORKERS 256
/* The HTTP listeners the master watches while refusing, at a stop. */
#define MASTER_MAX_LISTEN 64
/* A worker that dies before it is ready (its apps' init failed, say)
 * cannot start: the next start in its slot waits 100 ms, doubling up to
 * MASTER_BACKOFF_MAX. One that crashes while serving is replaced at once,
 * as gunicorn and nginx do: a client that can crash workers must not be
 * able to keep every slot empty. */
#define MASTER_BACKOFF_MAX 10000
/* A reload gives up on new workers that are not ready in this time. */
#define MASTER_READY_MS 30000
/* --timeout: a blocked worker's own watchdog gets this long to log its
 * backtrace before the master kills it anyway. */
#define MASTER_REPORT_MS 1000

enum worker_state { W_FREE, W_STARTING, W_READY, W_STOPPING };

struct worker {
    pid_t pid;
    enum worker_state state;
    unsigned generation;
    int ready_fd; /* read end of the worker's ready pipe */
    int64_t started_ms;
    int64_t kill_at; /* SIGKILL if still alive then (-1: none) */
    /* --timeout: the hub's beat as last sampled, and since when */
    uint64_t seen_beat;
    int64_t seen_at;
    int64_t report_by; /* blocked past the timeout: kill by then (-1) */
    int timed_out;     /* killed for it */
    /* kept while the slot is free: */
    int64_t respawn_at;   /* start a worker in this slot then (-1: none) */
    unsigned start_fails; /* deaths before ready, in a row */
};

static struct {
    const struct master_config *cfg;
    struct worker w[MASTER_MAX_WORKERS];
    struct watchdog_shared *slots; /* shared: one per worker slot */
    unsigned target;               /* workers wanted */
    unsigned generation;
    int stopping; /* 0, or the signal that asked */
    int sigfd;
    sigset_t mask, old_mask;
    int failed;    /* a worker failed during the stop */
    int listening; /* the listeners are open: not closed by a stop yet */
    pid_t pid;
} m;

static int64_t master_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned master_count(unsigned generation, int live_only)
{
    unsigned n = 0;
    for (int i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m.w[i].state != W_FREE && m.w[i].generation == generation &&
            (!live_only || m.w[i].state != W_STOPPING))
            n++;
    return n;
}

/* In the child: back to default signals, die with the master, serve. */
static void master_child(int index, int ready_wr)
{
    close(m.sigfd);
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT,  SIGQUIT, SIGHUP,
                  SIGUSR1, SIGTTIN, SIGTTOU, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
    /* Back to the mask the master started with, except the stop and
     * reopen signals: the worker's server unblocks them once its handlers
     * are in place, so one that comes during startup is not fatal. */
    sigset_t mask = m.old_mask;
    int held[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1};
    for (size_t i = 0; i < sizeof held / sizeof *held; i++)
        sigaddset(&mask, held[i]);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != m.pid)
        _exit(1);
    for (int i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m.w[i].state != W_FREE && m.w[i].ready_fd >= 0)
            close(m.w[i].ready_fd);
    sockets__close_inherited();
    metrics_http__close_inherited();
    /* exit, not _exit: atexit handlers and stdio buffers are the worker's
     * own (main flushed stdout before forking) */
    exit(m.cfg->worker_main(m.cfg->ctx, ready_wr, &m.slots[index],
                            metrics__slot((unsigned)index)));
}

/* Starts a worker in slot i, or in the first free slot with no restart
 * pending if i is -1. */
static void master_spawn_in(int i)
{
    if (i < 0) {
        i = 0;
        while (i < MASTER_MAX_WORKERS &&
               (m.w[i].state != W_FREE || m.w[i].respawn_at >= 0))
            i++;
    }
    if (i == MASTER_MAX_WORKERS) {
        log_error("master: no room for another worker");
        return;
    }
    /* a socket pair, not a pipe: the worker also asks for its stream
     * apps' sockets there, and gets them with SCM_RIGHTS (sockets.h) */
    int p[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0) {
        log_error("master: socketpair: %s", strerror(errno));
        return;
    }
    memset(&m.slots[i], 0, sizeof m.slots[i]);
    metrics__slot_reset((unsigned)i);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("master: fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        master_child(i, p[1]);
    }
    close(p[1]);
    metrics__worker_started();
    m.w[i] = (struct worker){.pid = pid,
                             .state = W_STARTING,
                             .generation = m.generation,
                             .ready_fd = p[0],
                             .started_ms = master_now(),
                             .kill_at = -1,
                             .seen_at = -1,
                             .report_by = -1,
                             .respawn_at = -1,
                             .start_fails = m.w[i].start_fails};
    log_info("master: worker %d started (generation %u)", (int)pid,
             m.generation);
}

static void master_spawn(void)
{
    master_spawn_in(-1);
}

static void master_signal(struct worker *w, int sig, int64_t grace_ms)
{
    if (w->state == W_FREE)
        return;
    kill(w->pid, sig);
    if (w->state != W_STOPPING || w->kill_at < 0)
        w->kill_at = master_now() + grace_ms;
    w->state = W_STOPPING;
}

/* Stops the old generation once the new one is all ready. */
static void master_finish_reload(void)
{
    if (master_count(m.generation, 1) < m.target)
        return;
    sockets__prune(m.generation);
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct worker *w = &m.w[i];
        if (w->state != W_FREE && w->generation != m.generation) {
            if (w->state == W_STARTING || w->state == W_READY)
                master_signal(w, SIGTERM, m.cfg->graceful_ms + 5000);
        }
    }
}

/* Whether the worker's channel holds its ready message ("1"), past any
 * unanswered request a worker that died left there. */
static int master_ready_sent(struct worker *w)
{
    char msg[8];
    ssize_t r;
    while (w->ready_fd >= 0 &&
           (r = recv(w->ready_fd, msg, sizeof msg, MSG_DONTWAIT)) > 0)
        if (msg[0] == '1')
            return 1;
    return 0;
}

/* Why a worker exited, for coserve_worker_exits_total. */
static enum metrics_cause master_cause(const struct worker *w, int status,
                                       int expected, int never_ready)
{
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (w->timed_out)
        return METRICS_TIMEOUT;
    if (!clean && !expected && never_ready)
        return METRICS_START_FAILED;
    if (WIFSIGNALED(status))
        return METRICS_SIGNAL;
    if (!clean)
        return METRICS_ERROR;
    return expected ? METRICS_STOPPED : METRICS_RECYCLED;
}

static void master_reaped(int i, int status)
{
    struct worker *w = &m.w[i];
    /* A worker may serve (and die) before this loop read its ready byte:
     * its pipe, closed by its death, still holds the byte then. */
    int never_ready = w->state == W_STARTING && !master_ready_sent(w);
    int expected = w->state == W_STOPPING || m.stopping;
    /* what it was serving, the fault and the backtrace: the worker's own
     * crash report, logged before it died */
    if (WIFSIGNALED(status))
        log_error("master: worker %d killed by signal %d (%s)%s", (int)w->pid,
                  WTERMSIG(status), strsignal(WTERMSIG(status)),
                  w->timed_out ? " for --timeout" : "");
    else if (WEXITSTATUS(status) != 0)
        log_warn("master: worker %d exited with status %d", (int)w->pid,
                 WEXITSTATUS(status));
    else if (!expected)
        log_info("master: worker %d exited (recycled)", (int)w->pid);
    else
        log_info("master: worker %d exited", (int)w->pid);
    if (w->ready_fd >= 0)
        close(w->ready_fd);
    unsigned gen = w->generation;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    /* A worker that fails while we stop makes the master's own exit status
     * say so (systemd and scripts see nothing else). SIGKILL sent by us at
     * the end of the grace period counts too. */
    if (!clean && m.stopping)
        m.failed = 1;
    /* its counters join the retired totals before the slot is reused */
    metrics__retire((unsigned)i, &m.slots[i],
                    master_cause(w, status, expected, never_ready));
    w->state = W_FREE;
    if (m.stopping || gen != m.generation)
        return;
    /* Recycled (--max-requests, exit 0) or crashed while serving: a new
     * worker at once. Failed to start: this slot waits, longer each time. */
    if (!clean && !expected && never_ready) {
        unsigned n = w->start_fails < 7 ? w->start_fails : 7;
        unsigned delay = 100u << n;
        if (delay > MASTER_BACKOFF_MAX)
            delay = MASTER_BACKOFF_MAX;
        w->start_fails++;
        w->respawn_at = master_now() + delay;
        log_warn("master: a worker failed to start (%u in a row); next try "
                 "in %u ms",
                 w->start_fails, delay);
    } else {
        w->respawn_at = master_now();
    }
}

/* Starts the workers whose slots' restart time has come, up to target. */
static void master_respawn_due(int64_t now)
{
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct worker *w = &m.w[i];
        if (w->respawn_at < 0 || now < w->respawn_at)
            continue;
        w->respawn_at = -1;
        if (w->state == W_FREE && !m.stopping &&
            master_count(m.generation, 1) < m.target)
            master_spawn_in(i);
    }
}

/* Stops new connections at once at a stop: the master's copy of the
 * listening socket is the one that outlives the workers, and while it is
 * open the kernel completes handshakes nobody will serve (clients would
 * wait out the grace period, then be reset). The workers close theirs
 * when they begin to drain. A socket from systemd stays open in systemd;
 * then the master accepts and resets what arrives, so clients fail over
 * at once. */
static void master_close_listener(void)
{
    sockets__close_all();
    if (!m.listening || m.cfg->listen_activated)
        return;
    for (unsigned i = 0; i < m.cfg->nlisten; i++)
        close(m.cfg->listen_fds[i]);
    m.listening = 0;
}

static void master_refuse(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fd);
    }
}

/* --timeout: a serving worker whose hub's beat stands still and even (not
 * asleep in its poll) for the timeout is killed, once its watchdog has
 * logged the backtrace (slot->reported) or MASTER_REPORT_MS later. Sets
 * *wake to the next sample. */
static void master_check_blocked(struct worker *w,
                                 const struct watchdog_shared *slot,
                                 int64_t now, int64_t *wake)
{
    int64_t timeout = m.cfg->timeout_ms;
    if (timeout <= 0 || w->timed_out ||
        (w->state != W_READY && w->state != W_STOPPING))
        return;
    uint64_t beat = __atomic_load_n(&slot->beat, __ATOMIC_ACQUIRE);
    if (w->seen_at < 0 || beat != w->seen_beat || (beat & 1)) {
        w->seen_beat = beat;
        w->seen_at = now;
        w->report_by = -1;
    } else if (now - w->seen_at >= timeout) {
        int reported =
            __atomic_load_n(&slot->reported, __ATOMIC_ACQUIRE) == beat;
        if (w->report_by < 0)
            w->report_by = now + MASTER_REPORT_MS;
        if (reported || now >= w->report_by) {
            log_error("master: worker %d blocked for %.1f s (--timeout %.1f "
                      "s): killed; it held %u requests%s",
                      (int)w->pid, (double)(now - w->seen_at) / 1000,
                      (double)timeout / 1000,
                      __atomic_load_n(&slot->requests, __ATOMIC_RELAXED),
                      reported ? "" : " (its watchdog logged no backtrace)");
            kill(w->pid, SIGKILL);
            w->timed_out = 1;
            return;
        }
    }
    /* a few samples per timeout: a block is seen by 1.125 timeouts. At
     * most one a second: each look is a wakeup of the master, which on a
     * VM costs some 50 us of CPU (measured with an idle poll loop), and
     * at the default 30 s timeout four a second were a quarter of a us
     * per request at 1,000 requests/s. */
    int64_t step = timeout / 8;
    step = step < 10 ? 10 : step > 1000 ? 1000 : step;
    if (w->report_by >= 0 && w->report_by - now < step)
        step = w->report_by - now > 1 ? w->report_by - now : 1;
    if (*wake < 0 || now + step < *wake)
        *wake = now + step;
}

static void master_reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < MASTER_MAX_WORKERS; i++)
            if (m.w[i].state != W_FREE && m.w[i].pid == pid) {
                master_reaped(i, status);
                break;
            }
}

static void master_on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD:
        master_reap();
        break;
    case SIGTERM:
    case SIGINT:
    case SIGQUIT: {
        int fast = sig == SIGQUIT;
        if (m.stopping && !fast)
            break;
        m.stopping = sig;
        log_info("master: %s stop on signal %d", fast ? "fast" : "graceful",
                 sig);
        master_close_listener();
        for (int i = 0; i < MASTER_MAX_WORKERS; i++)
            master_signal(&m.w[i], fast ? SIGQUIT : SIGTERM,
                          fast ? 2000 : m.cfg->graceful_ms + 5000);
        break;
    }
    case SIGHUP:
        if (m.stopping)
            break;
        m.generation++;
        metrics__reloaded();
        log_info("master: reload: starting generation %u", m.generation);
        for (unsigned i = 0; i < m.target; i++)
            master_spawn();
        break;
    case SIGUSR1:
        log_info("master: reopening log files");
        for (int i = 0; i < MASTER_MAX_WORKERS; i++)
            if (m.w[i].state != W_FREE)
                kill(m.w[i].pid, SIGUSR1);
        break;
    case SIGTTIN:
        if (m.target < MASTER_MAX_WORKERS && !m.stopping) {
            m.target++;
            log_info("master: %u workers", m.target);
            master_spawn();
        }
        break;
    case SIGTTOU:
        if (m.target > 1 && !m.stopping) {
            m.target--;
            log_info("master: %u workers", m.target);
            /* retire the newest of the current generation */
            int newest = -1;
            for (int i = 0; i < MASTER_MAX_WORKERS; i++)
                if (m.w[i].state != W_FREE && m.w[i].state != W_STOPPING &&
                    m.w[i].generation == m.generation &&
                    (newest < 0 || m.w[i].started_ms > m.w[newest].started_ms))
                    newest = i;
            if (newest >= 0)
                master_signal(&m.w[newest], SIGTERM, m.cfg->graceful_ms + 5000);
        }
        break;
    }
}

/* --metrics-listen: a page over the workers alive now (metrics_http.h). */
static void master_render(void *ctx, enum metrics_http_page page,
                          struct metrics_buf *out)
{
    (void)ctx;
    static const char *const names[] = {[W_STARTING] = "starting",
                                        [W_READY] = "ready",
                                        [W_STOPPING] = "stopping"};
    static struct metrics_worker ws[MASTER_MAX_WORKERS];
    unsigned n = 0;
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        const struct worker *w = &m.w[i];
        if (w->state == W_FREE)
            continue;
        ws[n++] = (struct metrics_worker){.slot = (unsigned)i,
                                          .pid = w->pid,
                                          .state = names[w->state],
                                          .generation = w->generation,
                                          .started_ms = w->started_ms,
                                          .wd = &m.slots[i]};
    }
    struct metrics_view v = {.pid = m.pid,
                             .generation = m.generation,
                             .target = m.target,
                             .stopping = m.stopping != 0,
                             .workers = ws,
                             .nworkers = n};
    if (page == METRICS_PAGE_METRICS)
        metrics__prometheus(&v, out);
    else
        metrics__status(&v, out);
}

int master__run(const struct master_config *cfg)
{
    memset(&m, 0, sizeof m);
    m.cfg = cfg;
    m.pid = getpid();
    m.target = cfg->workers ? cfg->workers : 1;
    if (m.target > MASTER_MAX_WORKERS)
        m.target = MASTER_MAX_WORKERS;
    m.generation = 1;
    m.listening = cfg->nlisten > 0;
    for (int i = 0; i < MASTER_MAX_WORKERS; i++)
        m.w[i].respawn_at = -1;
    m.slots = mmap(NULL, MASTER_MAX_WORKERS * sizeof *m.slots,
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m.slots == MAP_FAILED) {
        log_error("master: mmap: %s", strerror(errno));
        return 1;
    }
    if (cfg->metrics_on) {
        if (metrics__init(MASTER_MAX_WORKERS) < 0) {
            log_error("master: metrics: mmap: %s", strerror(errno));
            return 1;
        }
        metrics_http__start(cfg->metrics_fd, master_render, NULL);
    }
    sigemptyset(&m.mask);
    int sigs[] = {SIGTERM, SIGINT,  SIGQUIT, SIGHUP,
                  SIGUSR1, SIGTTIN, SIGTTOU, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaddset(&m.mask, sigs[i]);
    sigprocmask(SIG_BLOCK, &m.mask, &m.old_mask);
    m.sigfd = signalfd(-1, &m.mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m.sigfd < 0) {
        log_error("master: signalfd: %s", strerror(errno));
        return 1;
    }
    log_info("master %d: starting %u workers", (int)m.pid, m.target);
    for (unsigned i = 0; i < m.target; i++)
        master_spawn();

    for (;;) {
        int64_t now = master_now();
        master_respawn_due(now);
        int live = 0;
        int64_t wake = -1;
        struct pollfd pfd[MASTER_MAX_WORKERS + 1 + MASTER_MAX_LISTEN +
                          METRICS_HTTP_FDS];
        int idx[MASTER_MAX_WORKERS + 1 + MASTER_MAX_LISTEN];
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = m.sigfd, .events = POLLIN};
        for (unsigned i = 0; m.stopping && m.listening && i < m.cfg->nlisten &&
                             i < MASTER_MAX_LISTEN;
             i++) {
            idx[n] = -1;
            pfd[n++] = (struct pollfd){.fd = m.cfg->listen_fds[i],
                                       .events = POLLIN};
        }
        for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
            struct worker *w = &m.w[i];
            if (w->respawn_at >= 0 && !m.stopping &&
                (wake < 0 || w->respawn_at < wake))
                wake = w->respawn_at;
            if (w->state == W_FREE)
                continue;
            live++;
            if (w->kill_at >= 0 && now >= w->kill_at) {
                log_warn("master: worker %d did not stop in time: SIGKILL",
                         (int)w->pid);
                kill(w->pid, SIGKILL);
                w->kill_at = -1;
            }
            if (w->kill_at >= 0 && (wake < 0 || w->kill_at < wake))
                wake = w->kill_at;
            master_check_blocked(w, &m.slots[i], now, &wake);
            /* a worker stopped while it starts may still be asking for
             * its stream sockets: it gets an answer (a refusal) */
            if (w->state == W_STOPPING && w->ready_fd >= 0) {
                idx[n] = i;
                pfd[n++] = (struct pollfd){.fd = w->ready_fd, .events = POLLIN};
            }
            if (w->state == W_STARTING && w->ready_fd >= 0) {
                idx[n] = i;
                pfd[n++] = (struct pollfd){.fd = w->ready_fd, .events = POLLIN};
                int64_t give_up = w->started_ms + MASTER_READY_MS;
                if (now >= give_up) {
                    log_error("master: worker %d not ready after %d s",
                              (int)w->pid, MASTER_READY_MS / 1000);
                    master_signal(w, SIGKILL, 1000);
                } else if (wake < 0 || give_up < wake) {
                    wake = give_up;
                }
            }
        }
        if (m.stopping && live == 0)
            break;
        /* the metrics responder's sockets go last: the loop below reads
         * the workers' entries only */
        int nworker_fds = n;
        n += metrics_http__pollfds(pfd + n, now, &wake);
        int timeout = wake < 0 ? -1 : (int)(wake > now ? wake - now : 0);
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(m.sigfd, &si, sizeof si) == sizeof si)
                master_on_signal((int)si.ssi_signo);
        }
        metrics_http__serve(pfd + nworker_fds, n - nworker_fds, master_now());
        for (int k = 1; k < nworker_fds; k++) {
            if (!pfd[k].revents)
                continue;
            if (idx[k] < 0) {
                master_refuse(pfd[k].fd);
                continue;
            }
            struct worker *w = &m.w[idx[k]];
            char b[600];
            ssize_t r = recv(w->ready_fd, b, sizeof b - 1, MSG_DONTWAIT);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r > 0 && b[0] == SOCKETS_ASK) { /* a stream app's socket */
                b[r] = '\0';
                sockets__answer(w->ready_fd, b + 1,
                                w->state == W_STOPPING ? 0 : w->generation,
                                m.cfg->listen_stream);
                continue;
            }
            if (r == 1 && b[0] == '1' && w->state == W_STARTING) {
                w->state = W_READY;
                w->start_fails = 0;
                if (w->generation == m.generation)
                    master_finish_reload();
            }
            close(w->ready_fd);
            w->ready_fd = -1;
        }
    }
    log_info("master %d: all workers stopped%s", (int)m.pid,
             m.failed ? " (some failed)" : "");
    close(m.sigfd);
    metrics_http__stop();
    master_close_listener();
    sigprocmask(SIG_SETMASK, &m.old_mask, NULL);
    return m.failed ? 1 : 0;
}
