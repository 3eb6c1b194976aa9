/*
 * interleave: coroutines taking turns on one thread, the coserve way.
 *
 * Three workers sleep different times and print as they wake (the gevent
 * spawn/joinall example), a producer and a consumer pass messages through a
 * channel, and a blocking call runs on the offload pool while the others go
 * on. Built and run by `make run` until the HTTP server lands.
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "coserve.h"

static int64_t start;

static void *worker(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    for (int i = 0; i < 3; i++) {
        co_sleep(co_deadline(ms));
        printf("%5lld ms  worker(%3ld ms) woke, round %d\n",
               (long long)(co_now() - start), (long)ms, i + 1);
    }
    return arg;
}

static void blocking_work(void *arg)
{
    usleep(250 * 1000); /* a blocking call: fine on an offload thread */
    *(int *)arg = 42;
}

static void *producer(void *arg)
{
    co_chan_t *ch = arg;
    for (int i = 1; i <= 5; i++) {
        co_chan_send(ch, &i, -1);
        printf("%5lld ms  producer sent %d\n", (long long)(co_now() - start),
               i);
    }
    co_chan_close(ch);
    return NULL;
}

static void *consumer(void *arg)
{
    co_chan_t *ch = arg;
    int v;
    while (co_chan_recv(ch, &v, -1) == 0) {
        printf("%5lld ms  consumer got %d\n", (long long)(co_now() - start), v);
        co_sleep(co_deadline(40));
    }
    return NULL;
}

static void *demo(void *unused)
{
    (void)unused;
    start = co_now();
    co_t *w[3] = {co_spawn(worker, (void *)100), co_spawn(worker, (void *)70),
                  co_spawn(worker, (void *)150)};
    co_chan_t *ch = co_chan_new(sizeof(int), 2);
    co_t *p = co_spawn(producer, ch), *c = co_spawn(consumer, ch);
    int answer = 0;
    co_offload(blocking_work, &answer, NULL, -1);
    printf("%5lld ms  offload returned %d while the others kept running\n",
           (long long)(co_now() - start), answer);
    co_join_all(w, 3, -1);
    co_join(p, NULL, -1);
    co_join(c, NULL, -1);
    co_chan_free(ch);
    printf("%5lld ms  all joined\n", (long long)(co_now() - start));
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return co_run(demo, NULL, NULL) == 0 ? 0 : 1;
}
