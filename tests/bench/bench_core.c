/*
 * bench_core.c - coserve's core against the anchors it must beat, measured
 * in one run on one machine, printed as one table.
 *
 *   1. switch round trip: co_yield_now() (coroutine -> hub -> coroutine) vs two
 *      ucontexts ping-ponging through swapcontext().      target >= 20x
 *   2. spawn + run + join of an empty coroutine vs pthread_create +
 *      pthread_join of an empty thread.                    target >= 100x
 *   3. co_offload() of an empty function, one after another from one
 *      coroutine, vs a mutex/condvar round trip between two threads.
 *                                                          target <= 2x
 *   4. resident memory per coroutine, 100,000 of them parked in co_sleep()
 *      (anchor: 1,000 threads parked on a condvar).        target <= 12 KiB
 *   5. the price of the hooks: a 1-byte ping-pong between two coroutines of
 *      one hub over a socketpair, both sides calling plain recv()/send() on
 *      BLOCKING fds (the hooks park them), vs both sides calling
 *      co_recv()/co_send_all() on non-blocking fds.       target <= 1.2x
 *   6. a queue round trip: one void * each way between two coroutines of one
 *      hub through two co_queue_t (put + get, the getter parked each time),
 *      vs the same through two co_chan_t of void * (capacity 1). A thread
 *      pair over a mutex/condvar, row 3's anchor, is printed beside it.
 *                                                          target <= 1.2x
 *   7. wait-any over 100 objects: a coroutine parked in co_wait_any() on
 *      100 pipe fds, woken by a byte in the last one, vs a plain poll()
 *      over the same 100 fds (hooked: one ev_io per fd). target <= 1.2x
 *
 * Each time figure is the best of REPEAT runs (RT_REPEAT for row 5), the
 * two sides of a row alternating. Threads are not pinned. Hooks are on
 * (hook__enabled = 1), as in the server: this binary links libcore.a, so its
 * own recv/send/ socketpair calls bind to the hooks (hook_io.c, hook.c), not to
 * libc's. Usage: bench-core [scale]  (scale multiplies the iteration
 * counts; 1.0 by default, e.g. 0.1 for a quick look).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/hook.h"
#include "coserve.h"

#define REPEAT 5
/* Row 5 alternates its two sides in more, shorter runs: a burst of other
 * load then spoils a few runs of each side, not a whole figure. */
#define RT_REPEAT 20

static double scale = 1.0;

static long iters(long base)
{
    long n = (long)((double)base * scale);
    return n < 1 ? 1 : n;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-core: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- 1. switch round trip ------------------------------------------ */

static ucontext_t uc_main, uc_peer;
static char uc_stack[64 * 1024];

static void uc_peer_fn(void)
{
    for (;;)
        swapcontext(&uc_peer, &uc_main);
}

static double anchor_swapcontext(long n)
{
    if (getcontext(&uc_peer) < 0)
        die("getcontext");
    uc_peer.uc_stack.ss_sp = uc_stack;
    uc_peer.uc_stack.ss_size = sizeof uc_stack;
    uc_peer.uc_link = NULL;
    makecontext(&uc_peer, uc_peer_fn, 0);
    swapcontext(&uc_main, &uc_peer); /* warm up: the peer is now looping */
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_peer);
    return (now_ns() - t0) / (double)n;
}

static double coserve_yield(long n)
{
    co_yield_now();
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        co_yield_now();
    return (now_ns() - t0) / (double)n;
}

/* ---- 2. spawn + run + join ----------------------------------------- */

static void *empty_thread(void *arg)
{
    return arg;
}

static double anchor_pthread(long n)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, empty_thread, NULL) != 0)
            die("pthread_create");
        pthread_join(t, NULL);
    }
    return (now_ns() - t0) / (double)n;
}

static void *empty_co(void *arg)
{
    return arg;
}

static double coserve_spawn(long n)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        co_t *co = co_spawn(empty_co, NULL);
        if (!co || co_join(co, NULL, -1) != 0)
            die("co_spawn/co_join");
    }
    return (now_ns() - t0) / (double)n;
}

/* ---- 3. offload round trip ----------------------------------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t to_worker, to_main;
    int turn; /* 1: the worker's turn, 0: main's */
    int stop;
} pp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
        PTHREAD_COND_INITIALIZER, 0, 0};

static void *pp_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pp.lock);
    for (;;) {
        while (pp.turn != 1 && !pp.stop)
            pthread_cond_wait(&pp.to_worker, &pp.lock);
        if (pp.stop)
            break;
        pp.turn = 0;
        pthread_cond_signal(&pp.to_main);
    }
    pthread_mutex_unlock(&pp.lock);
    return NULL;
}

static double anchor_condvar(long n)
{
    pthread_t t;
    pp.turn = 0;
    pp.stop = 0;
    if (pthread_create(&t, NULL, pp_worker, NULL) != 0)
        die("pthread_create");
    double t0 = 0;
    pthread_mutex_lock(&pp.lock);
    for (long i = -100; i < n; i++) { /* 100 warm-up round trips */
        if (i == 0)
            t0 = now_ns();
        pp.turn = 1;
        pthread_cond_signal(&pp.to_worker);
        while (pp.turn != 0)
            pthread_cond_wait(&pp.to_main, &pp.lock);
    }
    double dt = now_ns() - t0;
    pp.stop = 1;
    pthread_cond_signal(&pp.to_worker);
    pthread_mutex_unlock(&pp.lock);
    pthread_join(t, NULL);
    return dt / (double)n;
}

static void empty_work(void *arg)
{
    (void)arg;
}

static double coserve_offload(long n)
{
    for (int i = 0; i < 100; i++) /* warm up: threads started */
        if (co_offload(empty_work, NULL, NULL, -1) != 0)
            die("co_offload");
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (co_offload(empty_work, NULL, NULL, -1) != 0)
            die("co_offload");
    return (now_ns() - t0) / (double)n;
}

/* ---- 4. resident memory ---------------------------------------------- */

static long resident_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = -1;
        fclose(f);
    }
    return res;
}

#define MEM_COROS 100000
#define MEM_THREADS 1000

static size_t mem_parked;

static void *sleeper(void *arg)
{
    (void)arg;
    mem_parked++;
    co_sleep(co_deadline(3600 * 1000)); /* until cancelled */
    return NULL;
}

struct mem_result {
    size_t spawned;
    double kib_per;
    int spawn_errno;
};

static void coserve_memory(struct mem_result *r)
{
    co_t **cos = calloc(MEM_COROS, sizeof *cos);
    if (!cos)
        die("calloc");
    memset(cos, 0, MEM_COROS * sizeof *cos); /* resident before measuring */
    mem_parked = 0;
    long before = resident_pages();
    size_t n = 0;
    for (; n < MEM_COROS; n++) {
        if (!(cos[n] = co_spawn(sleeper, NULL))) {
            r->spawn_errno = errno;
            break;
        }
    }
    while (mem_parked < n)
        co_yield_now();
    long after = resident_pages();
    r->spawned = n;
    r->kib_per = n ? (double)(after - before) * (double)sysconf(_SC_PAGESIZE) /
                         1024.0 / (double)n
                   : 0;
    for (size_t i = 0; i < n; i++)
        co_cancel(cos[i]);
    if (co_join_all(cos, n, -1) != 0)
        die("co_join_all");
    free(cos);
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int parked, release;
} tp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void *parked_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&tp.lock);
    tp.parked++;
    pthread_cond_broadcast(&tp.cond);
    while (!tp.release)
        pthread_cond_wait(&tp.cond, &tp.lock);
    pthread_mutex_unlock(&tp.lock);
    return NULL;
}

static double anchor_thread_memory(void)
{
    static pthread_t th[MEM_THREADS];
    long before = resident_pages();
    int n = 0;
    for (; n < MEM_THREADS; n++)
        if (pthread_create(&th[n], NULL, parked_thread, NULL) != 0)
            break;
    pthread_mutex_lock(&tp.lock);
    while (tp.parked < n)
        pthread_cond_wait(&tp.cond, &tp.lock);
    pthread_mutex_unlock(&tp.lock);
    long after = resident_pages();
    pthread_mutex_lock(&tp.lock);
    tp.release = 1;
    pthread_cond_broadcast(&tp.cond);
    pthread_mutex_unlock(&tp.lock);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    return n ? (double)(after - before) * (double)sysconf(_SC_PAGESIZE) /
                   1024.0 / n
             : 0;
}

/* ---- 5. hooked recv vs co_recv round trip ---------------------------- */

/* One side of the ping-pong: fds[0] for the timed side (bench_main's
 * coroutine), fds[1] for the echoing peer. hooked: plain recv()/send() on
 * blocking fds; else co_recv()/co_send_all() on non-blocking ones. */
static struct {
    int fds[2];
    int hooked;
    long echoes; /* bytes the peer echoed: proves each recv parked */
} rt;

/* The hooked run must not block the hub: if recv() were libc's, the first
 * one would sleep in the kernel forever, with the peer never run. */
static void rt_stalled(int sig)
{
    (void)sig;
    static const char msg[] =
        "bench-core: hooked recv() blocked the hub: hooks not in effect\n";
    /* not write(): that is a hook, and this runs on a coroutine's stack */
    syscall(SYS_write, 2, msg, sizeof msg - 1);
    _exit(1);
}

static ssize_t rt_recv(int fd, char *c)
{
    return rt.hooked ? recv(fd, c, 1, 0) : co_recv(fd, c, 1, 0, -1);
}

static int rt_send(int fd, const char *c)
{
    return rt.hooked ? (send(fd, c, 1, 0) == 1 ? 0 : -1)
                     : co_send_all(fd, c, 1, 0, -1);
}

static void *rt_peer(void *arg)
{
    (void)arg;
    char c;
    ssize_t r;
    while ((r = rt_recv(rt.fds[1], &c)) == 1) {
        rt.echoes++;
        if (rt_send(rt.fds[1], &c) != 0)
            die("ping-pong: peer send");
    }
    if (r < 0)
        die("ping-pong: peer recv");
    return NULL; /* 0: the timed side closed its end */
}

/* ns per round trip (send one byte, recv the echo) over n round trips. */
static double ping_pong(int hooked, long n)
{
    rt.hooked = hooked;
    rt.echoes = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | (hooked ? 0 : SOCK_NONBLOCK), 0,
                   rt.fds) < 0)
        die("socketpair");
    if (hooked) {
        /* Really blocking, in the kernel and as the fd's user sees it:
         * sockets get MSG_DONTWAIT per call, their file stays blocking. */
        for (int i = 0; i < 2; i++)
            if ((syscall(SYS_fcntl, rt.fds[i], F_GETFL) & O_NONBLOCK) ||
                (fcntl(rt.fds[i], F_GETFL) & O_NONBLOCK)) {
                fprintf(stderr, "bench-core: ping-pong fd not blocking\n");
                exit(1);
            }
        if (!hook__co) {
            fprintf(stderr, "bench-core: hooks off in the bench coroutine\n");
            exit(1);
        }
        signal(SIGALRM, rt_stalled);
        alarm(60);
    }
    co_t *peer = co_spawn(rt_peer, NULL);
    if (!peer)
        die("co_spawn");
    int fd = rt.fds[0];
    char c = 'x';
    double t0 = 0;
    for (long i = -1000; i < n; i++) { /* 1000 warm-up round trips */
        if (i == 0)
            t0 = now_ns();
        long before = rt.echoes;
        if (rt_send(fd, &c) != 0 || rt_recv(fd, &c) != 1)
            die("ping-pong");
        /* The echo came from the peer, which could only run while this
         * recv was parked in the hub. */
        if (rt.echoes != before + 1) {
            fprintf(stderr, "bench-core: ping-pong recv did not park\n");
            exit(1);
        }
    }
    double dt = now_ns() - t0;
    close(fd); /* the peer reads end of file and returns */
    if (co_join(peer, NULL, -1) != 0)
        die("co_join");
    close(rt.fds[1]);
    if (hooked)
        alarm(0);
    return dt / (double)n;
}

/* ---- 6. queue round trip ------------------------------------------- */

/* [0] carries the timed side's items to the peer, [1] brings them back.
 * chan: the anchor, the same exchange over co_chan_t. */
static struct {
    int chan;
    co_queue_t *q[2];
    co_chan_t *ch[2];
} qr;

static int qr_put(int i, void *item)
{
    return qr.chan ? co_chan_send(qr.ch[i], &item, -1)
                   : co_queue_put(qr.q[i], item, -1);
}

static int qr_get(int i, void **item)
{
    return qr.chan ? co_chan_recv(qr.ch[i], item, -1)
                   : co_queue_get(qr.q[i], item, -1);
}

static void *qr_peer(void *arg)
{
    (void)arg;
    void *item;
    while (qr_get(0, &item) == 0)
        if (qr_put(1, item) != 0)
            die("queue round trip: peer put");
    if (errno != EPIPE)
        die("queue round trip: peer get");
    return NULL; /* closed: the run is over */
}

/* ns per round trip (put one item, get it back) over n round trips. */
static double queue_round_trip(int chan, long n)
{
    qr.chan = chan;
    for (int i = 0; i < 2; i++) {
        qr.q[i] = chan ? NULL : co_queue_new(0);
        qr.ch[i] = chan ? co_chan_new(sizeof(void *), 1) : NULL;
        if (chan ? !qr.ch[i] : !qr.q[i])
            die("queue round trip: new");
    }
    co_t *peer = co_spawn(qr_peer, NULL);
    if (!peer)
        die("co_spawn");
    double t0 = 0;
    for (long i = -1000; i < n; i++) { /* 1000 warm-up round trips */
        if (i == 0)
            t0 = now_ns();
        void *item = NULL;
        if (qr_put(0, (void *)(intptr_t)i) != 0 || qr_get(1, &item) != 0 ||
            item != (void *)(intptr_t)i)
            die("queue round trip");
    }
    double dt = now_ns() - t0;
    if (chan)
        co_chan_close(qr.ch[0]);
    else
        co_queue_close(qr.q[0]);
    if (co_join(peer, NULL, -1) != 0)
        die("co_join");
    for (int i = 0; i < 2; i++) {
        co_queue_free(qr.q[i]);
        co_chan_free(qr.ch[i]);
    }
    return dt / (double)n;
}

/* ---- 7. wait-any over 100 objects ----------------------------------- */

/* 100 pipes; a peer coroutine writes a byte into the last one each round,
 * and the timed side, parked on all 100, wakes, reads it and goes again:
 * co_wait_any() over 100 CO_WAIT_FD entries vs the obvious baseline, a
 * plain poll() over the same 100 fds (the hooks park it with one ev_io
 * per fd). */
#define WA_N 100
static struct {
    int fds[WA_N][2];
    co_event_t *go;
} wa;

static void *wa_peer(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        co_yield_now(); /* let the timed side park first */
        if (co_write_all(wa.fds[WA_N - 1][1], "x", 1, -1) != 0)
            die("wait-any: peer write");
    }
    return NULL;
}

/* ns per wake over n rounds; use_poll: the poll() baseline. */
static double wait_any_round(int use_poll, long n)
{
    struct co_waitable w[WA_N];
    struct pollfd p[WA_N];
    for (int i = 0; i < WA_N; i++) {
        if (pipe2(wa.fds[i], O_NONBLOCK | O_CLOEXEC) != 0)
            die("pipe2");
        w[i] = (struct co_waitable){
            .kind = CO_WAIT_FD, .fd = wa.fds[i][0], .events = CO_READABLE};
        p[i] = (struct pollfd){.fd = wa.fds[i][0], .events = POLLIN};
    }
    co_t *peer = co_spawn(wa_peer, (void *)(intptr_t)n);
    if (!peer)
        die("co_spawn");
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int got = use_poll ? poll(p, WA_N, -1) : co_wait_any(w, WA_N, -1);
        if (got < 0 ||
            (use_poll ? !(p[WA_N - 1].revents & POLLIN) : got != WA_N - 1))
            die("wait-any round");
        char c;
        if (read(wa.fds[WA_N - 1][0], &c, 1) != 1)
            die("wait-any: read");
    }
    double dt = now_ns() - t0;
    if (co_join(peer, NULL, -1) != 0)
        die("co_join");
    for (int i = 0; i < WA_N; i++)
        close(wa.fds[i][0]), close(wa.fds[i][1]);
    return dt / (double)n;
}

/* ---- the run ------------------------------------------------------- */

static long n_switch, n_swapctx, n_spawn, n_pthread, n_offload, n_condvar;
static long n_rt, n_queue, n_waitany;

struct figures {
    double yield_ns, swapctx_ns;
    double spawn_ns, pthread_ns;
    double offload_ns, condvar_ns;
    struct mem_result mem;
    double thread_kib;
    double hooked_ns[RT_REPEAT], corecv_ns[RT_REPEAT];
    double queue_ns, chan_ns;
    double waitany_ns, poll_ns;
};

static double best(double a, double b)
{
    return a < b ? a : b;
}

static void *bench_main(void *arg)
{
    struct figures *f = arg;
    f->yield_ns = f->swapctx_ns = 1e300;
    f->spawn_ns = f->pthread_ns = 1e300;
    f->offload_ns = f->condvar_ns = 1e300;
    f->queue_ns = f->chan_ns = 1e300;
    for (int r = 0; r < REPEAT; r++) {
        f->swapctx_ns = best(f->swapctx_ns, anchor_swapcontext(n_swapctx));
        f->yield_ns = best(f->yield_ns, coserve_yield(n_switch));
    }
    for (int r = 0; r < REPEAT; r++) {
        f->pthread_ns = best(f->pthread_ns, anchor_pthread(n_pthread));
        f->spawn_ns = best(f->spawn_ns, coserve_spawn(n_spawn));
    }
    for (int r = 0; r < REPEAT; r++) {
        f->condvar_ns = best(f->condvar_ns, anchor_condvar(n_condvar));
        f->offload_ns = best(f->offload_ns, coserve_offload(n_offload));
    }
    f->thread_kib = anchor_thread_memory();
    coserve_memory(&f->mem);
    for (int r = 0; r < RT_REPEAT; r++) {
        f->corecv_ns[r] = ping_pong(0, n_rt);
        f->hooked_ns[r] = ping_pong(1, n_rt);
    }
    for (int r = 0; r < REPEAT; r++) {
        f->chan_ns = best(f->chan_ns, queue_round_trip(1, n_queue));
        f->queue_ns = best(f->queue_ns, queue_round_trip(0, n_queue));
    }
    f->waitany_ns = f->poll_ns = 1e300;
    for (int r = 0; r < REPEAT; r++) {
        f->poll_ns = best(f->poll_ns, wait_any_round(1, n_waitany));
        f->waitany_ns = best(f->waitany_ns, wait_any_round(0, n_waitany));
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; returns its median. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *verdict(int ok)
{
    return ok ? "PASS" : "MISS";
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        scale = strtod(argv[1], NULL);
        if (!(scale > 0)) {
            fprintf(stderr, "usage: %s [scale > 0]\n", argv[0]);
            return 2;
        }
    }
    n_switch = iters(10000000);
    n_swapctx = iters(200000);
    n_spawn = iters(1000000);
    n_pthread = iters(10000);
    n_offload = iters(30000);
    n_condvar = iters(30000);
    n_rt = iters(25000);
    n_queue = iters(2000000);
    n_waitany = iters(20000);

    struct utsname u;
    uname(&u);
    printf("coserve bench-core\ncommand:");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\nmachine: nproc %ld, %s, %s %s; threads not pinned; best of %d\n",
           sysconf(_SC_NPROCESSORS_ONLN), u.machine, u.sysname, u.release,
           REPEAT);
    fflush(stdout);

    struct figures f;
    hook__enabled = 1; /* as the server runs (no --no-hooks) */
    if (co_run(bench_main, &f, NULL) != 0)
        die("co_run");

    double r_switch = f.swapctx_ns / f.yield_ns;
    double r_spawn = f.pthread_ns / f.spawn_ns;
    double r_offload = f.offload_ns / f.condvar_ns;
    int mem_full = f.mem.spawned == MEM_COROS;
    double r_mem = f.mem.kib_per / f.thread_kib;

    printf("\n%-27s %-18s %-27s %-14s %-13s %s\n", "figure", "coserve",
           "anchor", "ratio", "target", "result");
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "---------------------------",
           "------------------", "---------------------------",
           "--------------", "-------------", "------");
    char a[64], b[64], c[64];

    snprintf(a, sizeof a, "%.1f ns", f.yield_ns);
    snprintf(b, sizeof b, "%.1f ns swapcontext", f.swapctx_ns);
    snprintf(c, sizeof c, "%.1fx faster", r_switch);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "1 switch round trip", a, b, c,
           ">= 20x", verdict(r_switch >= 20));

    snprintf(a, sizeof a, "%.1f ns", f.spawn_ns);
    snprintf(b, sizeof b, "%.1f ns pthread", f.pthread_ns);
    snprintf(c, sizeof c, "%.1fx faster", r_spawn);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "2 spawn+run+join (empty)", a,
           b, c, ">= 100x", verdict(r_spawn >= 100));

    snprintf(a, sizeof a, "%.0f ns", f.offload_ns);
    snprintf(b, sizeof b, "%.0f ns mutex/condvar", f.condvar_ns);
    snprintf(c, sizeof c, "%.2fx", r_offload);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "3 offload round trip", a, b,
           c, "<= 2x", verdict(r_offload <= 2));

    snprintf(a, sizeof a, "%.2f KiB", f.mem.kib_per);
    snprintf(b, sizeof b, "%.2f KiB parked thread", f.thread_kib);
    snprintf(c, sizeof c, "%.2fx", r_mem);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "4 resident per coroutine", a,
           b, c, "<= 12 KiB", verdict(mem_full && f.mem.kib_per <= 12.0));

    double med_hooked = median(f.hooked_ns, RT_REPEAT);
    double med_corecv = median(f.corecv_ns, RT_REPEAT);
    double best_hooked = f.hooked_ns[0], best_corecv = f.corecv_ns[0];
    double r_hooks = best_hooked / best_corecv;
    snprintf(a, sizeof a, "%.0f ns", best_hooked);
    snprintf(b, sizeof b, "%.0f ns co_recv", best_corecv);
    snprintf(c, sizeof c, "%.3fx", r_hooks);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "5 hooked recv round trip", a,
           b, c, "<= 1.2x", verdict(r_hooks <= 1.2));

    double r_queue = f.queue_ns / f.chan_ns;
    snprintf(a, sizeof a, "%.1f ns", f.queue_ns);
    snprintf(b, sizeof b, "%.1f ns co_chan (void *)", f.chan_ns);
    snprintf(c, sizeof c, "%.2fx", r_queue);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "6 queue round trip", a, b, c,
           "<= 1.2x", verdict(r_queue <= 1.2));

    double r_waitany = f.waitany_ns / f.poll_ns;
    snprintf(a, sizeof a, "%.0f ns", f.waitany_ns);
    snprintf(b, sizeof b, "%.0f ns poll() 100 fds", f.poll_ns);
    snprintf(c, sizeof c, "%.2fx", r_waitany);
    printf("%-27s %-18s %-27s %-14s %-13s %s\n", "7 wait-any, 100 objects", a,
           b, c, "<= 1.2x", verdict(r_waitany <= 1.2));

    printf("\niterations: co_yield_now %ld, swapcontext %ld, spawn %ld, "
           "pthread %ld, offload %ld, condvar %ld, ping-pong %ld, queue %ld\n",
           n_switch, n_swapctx, n_spawn, n_pthread, n_offload, n_condvar, n_rt,
           n_queue);
    printf("ping-pong: 1 byte each way between two coroutines of one hub over "
           "an AF_UNIX socketpair;\n"
           "  hooked = recv()/send() on blocking fds, every recv parked "
           "(checked); co_recv = co_recv()/co_send_all() on O_NONBLOCK fds\n"
           "  %d runs each, alternating; the table has the best, the medians "
           "are: hooked %.0f ns, co_recv %.0f ns, ratio %.3fx\n",
           RT_REPEAT, med_hooked, med_corecv, med_hooked / med_corecv);
    printf("queue: a void * each way between two coroutines of one hub, "
           "the getter parked every time;\n"
           "  co_queue = two unbounded co_queue_t, co_chan = two co_chan_t of "
           "void * (capacity 1); between two threads\n"
           "  (a mutex/condvar hand-off, row 3's anchor) a round trip is "
           "%.0f ns, %.0fx the queue's\n",
           f.condvar_ns, f.condvar_ns / f.queue_ns);
    printf("memory: %zu coroutines parked in co_sleep (of %d), %d threads "
           "parked on a condvar\n",
           f.mem.spawned, MEM_COROS, MEM_THREADS);
    if (!mem_full)
        printf("memory: co_spawn failed after %zu coroutines: %s\n",
               f.mem.spawned, strerror(f.mem.spawn_errno));
    return 0;
}
