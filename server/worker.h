/*
 * worker.h - the process layer of a worker: what the process around the
 * HTTP front end decides (worker.c).
 *
 * http/ serves connections and knows nothing of processes. The worker
 * owns the signals (TERM/INT stop, QUIT fast stop, USR1 reopens the
 * access log), the stop's grace, --max-requests recycling (counted through
 * http's per-request hook) and the apps' start and stop around the
 * serving. The master (master.c) forks the process and talks to it; main.c
 * fills this in and calls worker__run in the child.
 */
#ifndef COSERVE_WORKER_H
#define COSERVE_WORKER_H

#include <stdint.h>

struct http_config;

struct worker_config {
    int64_t grace_ms;             /* in-flight requests get this at a stop */
    uint64_t max_requests;        /* stop gracefully after (0: never) */
    uint64_t max_requests_jitter; /* plus a random 0..jitter, per worker */
    const char *access_log_path;  /* reopened on SIGUSR1 (NULL: stdout) */
    /* Run in the hub's main coroutine: before accepting, after draining. */
    void (*on_start)(void *ctx);
    void (*on_stop)(void *ctx);
    /* Run when a stop begins, before the HTTP drain, with the grace it
     * gets (0 at a fast stop): other listeners (stream apps) drain in the
     * same grace, not after it. NULL: none. */
    void (*on_drain)(void *ctx, int64_t grace_ms);
    void *ctx;
};

/* Runs one worker's hub on the calling thread: installs the signals, runs
 * on_start, serves http (cfg) on every one of listen_fds until TERM/INT
 * (graceful: wc->grace_ms), QUIT (no grace) or --max-requests, runs
 * on_drain, drains, runs on_stop. Returns 0 after a clean stop, -1 with
 * errno if it could not start. */
int worker__run(const struct http_config *cfg, const struct worker_config *wc,
                const int *listen_fds, unsigned nlisten);

#endif
