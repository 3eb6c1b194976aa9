/*
 * master.h - the process model: a master that supervises workers.
 *
 * The master binds the listening socket, forks the workers (each one hub,
 * one thread) and never runs app code: apps are loaded in the workers, so a
 * reload loads the .so files as they are on disk now. All workers accept
 * from the one socket the master holds, which outlives every worker: a
 * retiring worker's closing never drops a queued connection (with
 * SO_REUSEPORT, each socket has its own queue and closing one resets it).
 *
 * Signals, as gunicorn users expect: TERM/INT graceful stop, QUIT fast
 * stop, HUP zero-downtime reload (new workers first, then the old ones
 * drain), USR1 reopen log files, TTIN/TTOU one worker more/less. A worker
 * that dies is logged (the worker itself logs its crash report: the
 * request, the fault, the backtrace) and replaced at once; one that cannot
 * start waits longer each time.
 *
 * --timeout (gunicorn's): each worker's hub publishes its heartbeat in a
 * shared-memory slot (struct watchdog_shared). The master samples the
 * slots in its loop; a serving worker whose beat stands still (and even:
 * not asleep in its poll) for the timeout is killed with SIGKILL, once its
 * own watchdog has logged the backtrace (at most a second later), and
 * replaced at once. The master does the killing: a worker whose watchdog
 * thread is stuck too (on a lock the hub holds) must still die.
 */
#ifndef COSERVE_MASTER_H
#define COSERVE_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/watchdog.h"
#include "http/stats.h"

struct master_config {
    unsigned workers;    /* how many to keep running */
    int64_t graceful_ms; /* a stopping worker gets this, then KILL */
    int64_t timeout_ms;  /* a worker blocked this long is killed (0: off) */
    /* Runs in each forked worker; returns its exit status. It must write a
     * byte to ready_fd once it serves, and have its hub publish in `slot`
     * (shared memory, zeroed: watchdog__set_shared), and count in `stats`
     * (shared, zeroed; NULL without metrics_on: http_config.stats). */
    int (*worker_main)(void *ctx, int ready_fd, struct watchdog_shared *slot,
                       struct http_stats *stats);
    void *ctx;
    /* The listening sockets the workers share (every --listen): the master
     * closes them when a stop begins (and before it returns), unless they
     * came from systemd (listen_activated), which keeps them open for the
     * next start. */
    const int *listen_fds;
    unsigned nlisten;
    int listen_activated;
    /* Binds a stream app's listener when a worker asks for it (sockets.h);
     * the master keeps it until a stop, or a reload that no longer wants
     * it. */
    int (*listen_stream)(const char *spec, char *err, size_t errlen);
    /* --metrics-listen: the master serves /metrics and /status on
     * metrics_fd (a listening socket, closed when it returns) and maps
     * the workers' counters (metrics.h). */
    int metrics_on;
    int metrics_fd;
};

/* Runs the master until it is told to stop and every worker has exited.
 * Returns the process exit status: 0, or 1 if a worker failed (crashed or
 * exited non-zero) while stopping. */
int master__run(const struct master_config *cfg);

#endif
