/* The master's sums of its workers' counters (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* App names the master keeps apart, over all workers and reloads. */
#define METRICS_APPS 256
#define METRICS_OTHER (METRICS_APPS - 1)

/* Counters added up over workers, by app name. */
struct metrics_sum {
    unsigned napps; /* names[0] is "-", names[METRICS_OTHER] "other" */
    char names[METRICS_APPS][STATS_APP_NAME];
    struct stats_app apps[METRICS_APPS];
    uint64_t bytes_in, bytes_out, accepted, blocks;
};

static const char *const metrics_cause_names[METRICS_CAUSES] = {
    "stopped", "recycled", "error", "signal", "timeout", "start_failed"};

static struct {
    struct http_stats *slots;
    unsigned nslots;
    struct metrics_sum retired; /* workers that have exited */
    struct metrics_sum scratch; /* a scrape's sum */
    uint64_t starts, exits[METRICS_CAUSES], reloads;
    int64_t started_ms;
} metrics;

static int64_t metrics_now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void metrics_sum_init(struct metrics_sum *t)
{
    memset(t, 0, sizeof *t);
    memcpy(t->names[0], "-", 2);
    memcpy(t->names[METRICS_OTHER], "other", 6);
    t->napps = 1;
}

int metrics__init(unsigned nslots)
{
    size_t len = nslots * sizeof *metrics.slots;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    metrics.slots = p;
    metrics.nslots = nslots;
    metrics.started_ms = metrics_now(CLOCK_MONOTONIC);
    metrics_sum_init(&metrics.retired);
    return 0;
}

struct http_stats *metrics__slot(unsigned i)
{
    return metrics.slots && i < metrics.nslots ? &metrics.slots[i] : NULL;
}

void metrics__slot_reset(unsigned i)
{
    if (metrics__slot(i))
        memset(&metrics.slots[i], 0, sizeof metrics.slots[i]);
}

/* The index of name in t, added if new; "other" once t is full. */
static unsigned metrics_app(struct metrics_sum *t, const char *name)
{
    if (strcmp(name, "other") == 0)
        return METRICS_OTHER;
    for (unsigned i = 0; i < t->napps; i++)
        if (strcmp(t->names[i], name) == 0)
            return i;
    if (t->napps == METRICS_OTHER)
        return METRICS_OTHER;
    memcpy(t->names[t->napps], name, STATS_APP_NAME);
    return t->napps++;
}

static uint64_t metrics_count(const struct stats_app *a)
{
    uint64_t n = 0;
    for (int b = 0; b < STATS_BUCKETS; b++)
        n += stats__get(&a->buckets[b]);
    return n;
}

/* Adds slot s into t. An app with no request yet is kept only if
 * keep_idle (a live worker's apps show from the start; a dead worker's
 * unused ones need not stay forever). */
static void metrics_fold(struct metrics_sum *t, const struct http_stats *s,
                         int keep_idle)
{
    uint32_t n = __atomic_load_n(&s->napps, __ATOMIC_ACQUIRE);
    if (!n)
        return; /* not started yet: nothing counted */
    for (uint32_t i = 0; i < STATS_APPS; i++) {
        if (i >= n && i != STATS_OTHER)
            continue;
        const struct stats_app *a = &s->apps[i];
        if (!keep_idle && !metrics_count(a))
            continue;
        char name[STATS_APP_NAME];
        memcpy(name, s->names[i], sizeof name);
        name[sizeof name - 1] = '\0';
        if (i == STATS_OTHER && !metrics_count(a))
            continue;
        struct stats_app *to = &t->apps[metrics_app(t, name)];
        for (int c = 0; c < STATS_CODES; c++)
            to->requests[c] += stats__get(&a->requests[c]);
        for (int b = 0; b < STATS_BUCKETS; b++)
            to->buckets[b] += stats__get(&a->buckets[b]);
        to->sum_us += stats__get(&a->sum_us);
    }
    t->bytes_in += stats__get(&s->bytes_in);
    t->bytes_out += stats__get(&s->bytes_out);
    t->accepted += stats__get(&s->accepted);
}

void metrics__retire(unsigned i, const struct watchdog_shared *wd,
                     enum metrics_cause cause)
{
    metrics.exits[cause]++;
    if (!metrics__slot(i))
        return;
    metrics_fold(&metrics.retired, &metrics.slots[i], 0);
    metrics.retired.blocks += stats__get(&wd->episodes);
    /* folded: a scrape before the slot's reuse must not count it again */
    memset(&metrics.slots[i], 0, sizeof metrics.slots[i]);
}

void metrics__worker_started(void)
{
    metrics.starts++;
}

void metrics__reloaded(void)
{
    metrics.reloads++;
}

uint64_t metrics__reloads(void)
{
    return metrics.reloads;
}

void metrics__printf(struct metrics_buf *b, const char *fmt, ...)
{
    if (!b->p && !b->failed && !(b->p = malloc(b->cap = 16384)))
        b->failed = 1;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = b->failed ? 0 : vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if (b->failed || n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* ---- the exposition -------------------------------------------------- */

/* A label value: backslash, quote and newline escaped (the format's
 * rule); control bytes, which no app should name itself with, as '?'. */
static const char *metrics_label(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 3 < len; s++) {
        if (*s == '\\' || *s == '"')
            out[n++] = '\\', out[n++] = *s;
        else if (*s == '\n')
            out[n++] = '\\', out[n++] = 'n';
        else
            out[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
    }
    out[n] = '\0';
    return out;
}

static void metrics_head(struct metrics_buf *b, const char *name,
                         const char *type, const char *help)
{
    metrics__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_one(struct metrics_buf *b, const char *name,
                        const char *type, const char *help, uint64_t v)
{
    metrics_head(b, name, type, help);
    metrics__printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* The sum of a scrape: retired totals plus every live worker. */
static const struct metrics_sum *metrics_total(const struct metrics_view *v)
{
    struct metrics_sum *t = &metrics.scratch;
    memcpy(t, &metrics.retired, sizeof *t);
    for (unsigned i = 0; i < v->nworkers; i++) {
        metrics_fold(t, &metrics.slots[v->workers[i].slot], 1);
        t->blocks += stats__get(&v->workers[i].wd->episodes);
    }
    return t;
}

static void metrics_requests(struct metrics_buf *b, const struct metrics_sum *t)
{
    char app[STATS_APP_NAME * 2];
    metrics_head(b, "coserve_requests_total", "counter",
                 "HTTP requests answered, by app and status.");
    for (unsigned i = 0; i < METRICS_APPS; i++)
        for (int c = 0; c < STATS_CODES; c++)
            if (t->apps[i].requests[c])
                metrics__printf(
                    b,
                    "coserve_requests_total{app=\"%s\",status=\"%s\"} %llu\n",
                    metrics_label(t->names[i], app, sizeof app),
                    stats__code_names[c],
                    (unsigned long long)t->apps[i].requests[c]);
    metrics_head(b, "coserve_request_duration_seconds", "histogram",
                 "Time from a request's first byte to its last response "
                 "byte, by app.");
    for (unsigned i = 0; i < METRICS_APPS; i++) {
        const struct stats_app *a = &t->apps[i];
        uint64_t n = 0;
        for (int k = 0; k < STATS_BUCKETS; k++)
            n += a->buckets[k];
        if (!t->names[i][0] || (!n && (i == 0 || i == METRICS_OTHER)))
            continue;
        metrics_label(t->names[i], app, sizeof app);
        uint64_t cum = 0;
        for (int k = 0; k < STATS_BUCKETS; k++) {
            cum += a->buckets[k];
            metrics__printf(
                b,
                "coserve_request_duration_seconds_bucket{app=\"%s\","
                "le=\"%s\"} %llu\n",
                app, stats__bound_names[k], (unsigned long long)cum);
        }
        metrics__printf(b,
                        "coserve_request_duration_seconds_sum{app=\"%s\"} "
                        "%.6f\n"
                        "coserve_request_duration_seconds_count{app=\"%s\"} "
                        "%llu\n",
                        app, (double)a->sum_us / 1e6, app,
                        (unsigned long long)n);
    }
}

/* A gauge summed over the live workers' slots. */
#define METRICS_GAUGE_SUM(v, field)                                            \
    ({                                                                         \
        uint64_t sum_ = 0;                                                     \
        for (unsigned i_ = 0; i_ < (v)->nworkers; i_++)                        \
            sum_ += stats__get32(&metrics.slots[(v)->workers[i_].slot].field); \
        sum_;                                                                  \
    })

static void metrics_gauges(struct metrics_buf *b, const struct metrics_view *v)
{
    metrics_one(b, "coserve_connections_open", "gauge",
                "HTTP client connections open.",
                METRICS_GAUGE_SUM(v, connections));
    metrics_one(b, "coserve_requests_in_flight", "gauge",
                "Requests being served.", METRICS_GAUGE_SUM(v, active));
    metrics_one(b, "coserve_coroutines_alive", "gauge",
                "Coroutines alive in the workers' hubs.",
                METRICS_GAUGE_SUM(v, coroutines));
    metrics_one(b, "coserve_stack_pool_stacks", "gauge",
                "Idle coroutine stacks pooled for reuse.",
                METRICS_GAUGE_SUM(v, stacks_pooled));
    static const char *const pools[OFFLOAD_POOLS] = {"app", "names"};
    static const struct {
        const char *name, *help;
        size_t off;
    } per_pool[] = {
        {"coserve_offload_queue_depth", "Offload tasks waiting for a thread.",
         offsetof(struct http_stats, offload_queued)},
        {"coserve_offload_busy_threads", "Offload threads running a task.",
         offsetof(struct http_stats, offload_busy)},
        {"coserve_offload_threads", "Offload threads started.",
         offsetof(struct http_stats, offload_threads)},
    };
    for (size_t k = 0; k < sizeof per_pool / sizeof *per_pool; k++) {
        metrics_head(b, per_pool[k].name, "gauge", per_pool[k].help);
        for (int p = 0; p < OFFLOAD_POOLS; p++) {
            uint64_t sum = 0;
            for (unsigned i = 0; i < v->nworkers; i++) {
                const char *s =
                    (const char *)&metrics.slots[v->workers[i].slot];
                sum +=
                    stats__get32((const uint32_t *)(s + per_pool[k].off) + p);
            }
            metrics__printf(b, "%s{pool=\"%s\"} %llu\n", per_pool[k].name,
                            pools[p], (unsigned long long)sum);
        }
    }
}

void metrics__prometheus(const struct metrics_view *v, struct metrics_buf *b)
{
    const struct metrics_sum *t = metrics_total(v);
    metrics_requests(b, t);
    metrics_one(b, "coserve_received_bytes_total", "counter",
                "Bytes read from HTTP clients.", t->bytes_in);
    metrics_one(b, "coserve_sent_bytes_total", "counter",
                "Bytes written to HTTP clients.", t->bytes_out);
    metrics_one(b, "coserve_connections_accepted_total", "counter",
                "HTTP client connections accepted.", t->accepted);
    metrics_gauges(b, v);
    metrics_one(b, "coserve_hub_blocks_total", "counter",
                "Episodes of a worker's hub blocked past --block-threshold.",
                t->blocks);
    metrics_one(b, "coserve_worker_starts_total", "counter",
                "Worker processes started.", metrics.starts);
    metrics_head(b, "coserve_worker_exits_total", "counter",
                 "Worker processes exited, by cause.");
    for (int c = 0; c < METRICS_CAUSES; c++)
        metrics__printf(b, "coserve_worker_exits_total{cause=\"%s\"} %llu\n",
                        metrics_cause_names[c],
                        (unsigned long long)metrics.exits[c]);
    metrics_one(b, "coserve_reloads_total", "counter",
                "Reloads (SIGHUP) begun.", metrics.reloads);
    unsigned by_state[3] = {0, 0, 0};
    static const char *const states[3] = {"starting", "ready", "stopping"};
    for (unsigned i = 0; i < v->nworkers; i++)
        for (int s = 0; s < 3; s++)
            if (strcmp(v->workers[i].state, states[s]) == 0)
                by_state[s]++;
    metrics_head(b, "coserve_workers", "gauge", "Worker processes, by state.");
    for (int s = 0; s < 3; s++)
        metrics__printf(b, "coserve_workers{state=\"%s\"} %u\n", states[s],
                        by_state[s]);
    metrics_one(b, "coserve_generation", "gauge",
                "The workers' generation: 1, plus one per reload.",
                v->generation);
    metrics_one(b, "coserve_uptime_seconds", "gauge",
                "Seconds since the master started.",
                (uint64_t)(metrics_now(CLOCK_MONOTONIC) - metrics.started_ms) /
                    1000);
}

/* A worker's requests answered so far. */
static uint64_t metrics_worker_requests(const struct http_stats *s)
{
    uint64_t n = 0;
    for (int i = 0; i < STATS_APPS; i++)
        n += metrics_count(&s->apps[i]);
    return n;
}

void metrics__status(const struct metrics_view *v, struct metrics_buf *b)
{
    int64_t now = metrics_now(CLOCK_MONOTONIC);
    int64_t wall = metrics_now(CLOCK_REALTIME);
    metrics__printf(b,
                    "{\"master\":{\"pid\":%d,\"uptime_seconds\":%.3f,"
                    "\"generation\":%u,\"reloads\":%llu,\"workers_wanted\":%u,"
                    "\"stopping\":%s},\n\"workers\":[",
                    (int)v->pid, (double)(now - metrics.started_ms) / 1000,
                    v->generation, (unsigned long long)metrics.reloads,
                    v->target, v->stopping ? "true" : "false");
    for (unsigned i = 0; i < v->nworkers; i++) {
        const struct metrics_worker *w = &v->workers[i];
        const struct http_stats *s = &metrics.slots[w->slot];
        uint64_t beat = __atomic_load_n(&w->wd->beat, __ATOMIC_RELAXED);
        int64_t loop = __atomic_load_n(&s->loop_ms, __ATOMIC_RELAXED);
        /* asleep in its poll is as alive as a hub can be: age 0 */
        char age[32] = "null";
        if (beat & 1)
            snprintf(age, sizeof age, "0");
        else if (loop > 0)
            snprintf(age, sizeof age, "%lld",
                     (long long)(now > loop ? now - loop : 0));
        metrics__printf(
            b,
            "%s\n {\"slot\":%u,\"pid\":%d,\"generation\":%u,\"state\":\"%s\","
            "\"started_unix\":%.3f,\"uptime_seconds\":%.3f,"
            "\"requests\":%llu,\"connections_open\":%u,"
            "\"requests_in_flight\":%u,\"coroutines_alive\":%u,"
            "\"stacks_pooled\":%u,\"offload_queue_depth\":%u,"
            "\"offload_busy_threads\":%u,\"blocked_episodes\":%llu,"
            "\"heartbeat_age_ms\":%s}",
            i ? "," : "", w->slot, (int)w->pid, w->generation, w->state,
            (double)(wall - (now - w->started_ms)) / 1000,
            (double)(now - w->started_ms) / 1000,
            (unsigned long long)metrics_worker_requests(s),
            stats__get32(&s->connections), stats__get32(&s->active),
            stats__get32(&s->coroutines), stats__get32(&s->stacks_pooled),
            stats__get32(&s->offload_queued[OFFLOAD_APP]),
            stats__get32(&s->offload_busy[OFFLOAD_APP]),
            (unsigned long long)stats__get(&w->wd->episodes), age);
    }
    metrics__printf(b, "\n]}\n");
}
