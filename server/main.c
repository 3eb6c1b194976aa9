/*
 * coserve's entry point: parse the command line (options.c), bind the
 * listeners (listeners.c), drop privileges, run the master (master.c).
 *
 * The master forks the workers, and each worker (main_worker) captures
 * app stderr into the error log, loads the apps and serves with http/
 * through the process layer (worker.c: signals, stop, recycling).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app/app.h"
#include "core/errcap.h"
#include "core/fdio.h"
#include "core/hook.h"
#include "core/log.h"
#include "core/offload.h"
#include "core/stack.h"
#include "core/watchdog.h"
#include "http/static.h"
#include "http/stats.h"
#include "listeners.h"
#include "master.h"
#include "options.h"
#include "privs.h"
#include "sockets.h"
#include "stream/stream.h"
#include "worker.h"

static struct static_root main_www;
static int main_have_www;

static int main_static(co_request_t *req, co_response_t *res)
{
    return static__serve(&main_www, req, res);
}

static const struct http_route main_static_route = {
    .name = "static", .mount = "", .handler = main_static};

/* What the master hands each worker it forks. */
struct main_worker_ctx {
    struct http_config cfg;
    struct worker_config wc;
    const char *apps;
    const struct listeners *listen;
    struct app_table table;
    int ready_fd;
    struct stream_set streams; /* the stream apps' listeners */
    struct app_stream_opts stream_opts;
};

/* In the worker's hub, before it accepts: init the apps, then tell the
 * master we serve (a reload retires the old workers only after this). */
static void main_apps_start(void *arg)
{
    struct main_worker_ctx *w = arg;
    app__init_all(&w->table);
    /* stream apps ask the master for their sockets over ready_fd, so
     * before the ready byte */
    w->stream_opts.ask_ctx = w;
    app__streams_start(&w->table, &w->streams, &w->stream_opts);
    if (w->ready_fd >= 0) {
        ssize_t n = write(w->ready_fd, "1", 1);
        (void)n;
        close(w->ready_fd);
        w->ready_fd = -1;
    }
}

/* A stop begins: stream connections get the grace HTTP requests get. */
static void main_apps_drain(void *arg, int64_t grace_ms)
{
    struct main_worker_ctx *w = arg;
    stream__drain(&w->streams, grace_ms);
}

static void main_apps_stop(void *arg)
{
    struct main_worker_ctx *w = arg;
    stream__finish(&w->streams); /* before fini: handlers run app code */
    app__fini_all(&w->table);
}

/* A stream app's socket: the master binds it and keeps it (sockets.h). */
static int main_ask_stream(void *arg, const char *spec, char *err,
                           size_t errlen)
{
    struct main_worker_ctx *w = arg;
    if (w->ready_fd < 0) {
        snprintf(err, errlen, "no master to ask");
        return -1;
    }
    return sockets__ask(w->ready_fd, spec, err, errlen);
}

static int main_worker(void *arg, int ready_fd, struct watchdog_shared *slot,
                       struct http_stats *stats)
{
    struct main_worker_ctx *w = arg;
    w->ready_fd = ready_fd;
    /* before any app code: what apps write to stderr becomes error log
     * lines naming them */
    if (errcap__start() < 0)
        log_warn("app stderr stays uncaptured: %s", strerror(errno));
    /* the hub publishes its heartbeat there, for the master's --timeout */
    watchdog__set_shared(slot);
    /* Apps load here, in the worker, never in the master: a reload then
     * picks up the .so files as they are now, and a crashing init takes
     * down a worker, not the supervisor. main() checked the folder; it
     * can only have gone since (a reload). */
    if (app__load_dir(&w->table, w->apps) < 0)
        log_warn("--apps %s: %s; serving no apps", w->apps, strerror(errno));
    w->cfg.routing.route = app__route;
    w->cfg.routing.route_ctx = &w->table;
    /* --metrics-listen: the apps get their label index before serving */
    w->cfg.stats = stats;
    if (stats)
        stats__init(stats);
    for (size_t i = 0; stats && i < w->table.count; i++)
        w->table.apps[i].route.stats_id =
            stats__app(stats, w->table.apps[i].route.name);
    w->wc.on_start = main_apps_start;
    w->wc.on_stop = main_apps_stop;
    w->wc.on_drain = main_apps_drain;
    stream__set_init(&w->streams);
    w->wc.ctx = w;
    int rc = worker__run(&w->cfg, &w->wc, w->listen->fds, w->listen->count);
    /* the apps' offload hooks (fini) must run while their code is mapped */
    offload__shutdown();
    app__unload_all(&w->table);
    if (main_have_www)
        static__close(&main_www);
    if (w->cfg.access_log)
        fflush(w->cfg.access_log);
    return rc == 0 ? 0 : 1;
}

/* --pid-file: the master's pid, for logrotate's postrotate (USR1) and
 * scripts; the master keeps its pid across reloads. */
static int main_write_pid_file(const char *path)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int ok = write(fd, line, (size_t)n) == n;
    int e = errno;
    if (close(fd) < 0 || !ok) {
        errno = ok ? errno : e;
        return -1;
    }
    return 0;
}

#define MAIN_BAD(...)                                                          \
    do {                                                                       \
        fprintf(stderr, "coserve: " __VA_ARGS__);                              \
        fputc('\n', stderr);                                                   \
        return 2;                                                              \
    } while (0)

/* More connections than fds makes accept fail with EMFILE: raise the soft
 * limit to the hard one, as nginx's worker_rlimit_nofile would. */
static void main_raise_nofile(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want + 64)
        log_warn("open-file limit %llu is below --max-connections %u",
                 (unsigned long long)rl.rlim_cur, want);
}

/* The runtime settings the table leaves to the code: each applies only
 * when given, so the runtime's own defaults (and environment) hold. */
static int main_apply_runtime(const struct options *o)
{
    if (o->stack_size_set && stack__set_size(o->stack_size) < 0)
        MAIN_BAD("--stack-size: want 16K..1G, not %llu",
                 (unsigned long long)o->stack_size);
    if (o->offload_threads_set &&
        co_offload_set_threads((unsigned)o->offload_threads) < 0)
        MAIN_BAD("--offload-threads: want 1..1024, not %llu",
                 (unsigned long long)o->offload_threads);
    if (o->sendfile_chunk_set && fdio__set_sendfile_chunk(o->sendfile_chunk))
        MAIN_BAD("--sendfile-max-chunk: want 4K..1G, not %llu",
                 (unsigned long long)o->sendfile_chunk);
    hook__enabled = !o->no_hooks;
    watchdog__set_threshold(o->block_ms);
    watchdog__set_timeout(o->timeout_ms);
    watchdog__set_crash_reports(1);
    return -1;
}

/* What the master needs open before it forks: the access log, the static
 * root, and the apps folder, which must exist (a typo would otherwise
 * serve no apps, with one warning per worker). */
static int main_open_files(struct options *o)
{
    DIR *d = opendir(o->apps);
    if (!d)
        MAIN_BAD("--apps %s: %s", o->apps, strerror(errno));
    closedir(d);
    struct http_config *cfg = &o->http;
    cfg->access_log_json = o->access_format == OPTIONS_ACCESS_JSON;
    if (!o->access_log) {
        cfg->access_log = NULL;
    } else if (strcmp(o->access_log, "-") == 0) {
        cfg->access_log = stdout;
    } else {
        if (!(cfg->access_log = fopen(o->access_log, "a")))
            MAIN_BAD("--access-log %s: %s", o->access_log, strerror(errno));
        o->worker.access_log_path = o->access_log;
    }
    if (o->www) {
        if (static__open(&main_www, o->www) < 0)
            MAIN_BAD("--www %s: %s", o->www, strerror(errno));
        main_have_www = 1;
        cfg->routing.fallback = &main_static_route;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static struct options o;
    static struct listeners listen;
    static struct main_worker_ctx wctx;
    char err[512];
    int rc = options__parse(&o, argc, argv);
    if (rc < 0)
        rc = main_apply_runtime(&o);
    if (rc < 0 && privs__resolve(&o.privs, err, sizeof err) < 0)
        rc = 2, fprintf(stderr, "coserve: %s\n", err);
    if (rc < 0)
        rc = main_open_files(&o);
    if (rc >= 0)
        return rc;
    if (listeners__open(&listen, &o.listen, o.socket_mode, &o.privs, err,
                        sizeof err) < 0)
        MAIN_BAD("%s", err);
    listeners__export(&listen);
    /* the metrics listener: bound now, before the drop, like the others */
    int metrics_fd = o.metrics_listen
                         ? listeners__bind(o.metrics_listen, err, sizeof err)
                         : -1;
    if (o.metrics_listen && metrics_fd < 0)
        MAIN_BAD("--metrics-listen %s: %s", o.metrics_listen, err);
    if (o.pid_file && main_write_pid_file(o.pid_file) < 0)
        MAIN_BAD("--pid-file %s: %s", o.pid_file, strerror(errno));
    /* every socket and file that needs them is open: drop privileges
     * before a worker (and so any app code) exists */
    if (privs__drop(&o.privs, err, sizeof err) < 0)
        MAIN_BAD("%s", err);
    main_raise_nofile(o.http.limits.max_conns);
    fflush(stdout);

    wctx = (struct main_worker_ctx){.cfg = o.http,
                                    .wc = o.worker,
                                    .apps = o.apps,
                                    .listen = &listen,
                                    .ready_fd = -1};
    wctx.stream_opts = (struct app_stream_opts){
        .listen = o.streams.items,
        .nlisten = o.streams.count,
        .ask = main_ask_stream,
        .max_conns = o.http.limits.max_conns,
        .write_timeout_ms = o.http.limits.write_timeout_ms};
    struct master_config mcfg = {.workers = o.workers,
                                 .graceful_ms = o.worker.grace_ms,
                                 .timeout_ms = o.timeout_ms,
                                 .worker_main = main_worker,
                                 .ctx = &wctx,
                                 .listen_fds = listen.fds,
                                 .nlisten = listen.count,
                                 .listen_activated = listen.activated,
                                 .listen_stream = listeners__bind,
                                 .metrics_on = metrics_fd >= 0,
                                 .metrics_fd = metrics_fd};
    rc = master__run(&mcfg); /* it closes the listeners */
    if (!listen.activated)
        listeners__unlink(&listen);
    if (o.pid_file)
        unlink(o.pid_file); /* may fail after a drop: then it is stale */
    if (o.metrics_listen && strncmp(o.metrics_listen, "unix:", 5) == 0)
        unlink(o.metrics_listen + 5);
    if (main_have_www)
        static__close(&main_www);
    if (o.http.access_log && o.http.access_log != stdout)
        fclose(o.http.access_log);
    log_info("stopped");
    return rc;
}
