/*
 * jobs: a producer and two consumers around a queue with task_done / join
 * (gevent's JoinableQueue). The consumers mark each item done; the main
 * coroutine waits in co_queue_join until every item put has been marked,
 * then stops them. The gevent program is examples/py/jobs.py; both print
 * examples/jobs.expected.
 */
#include <stdint.h>
#include <stdio.h>

#include "coserve.h"

static co_queue_t *jobs_q;

static void *consumer(void *name)
{
    void *item;
    while (co_queue_get(jobs_q, &item, -1) == 0) {
        printf("%s got %d\n", (char *)name, (int)(intptr_t)item);
        co_yield_now(); /* the work: let the others run */
        co_queue_task_done(jobs_q);
    }
    return NULL; /* cancelled: stopped by main */
}

static void *producer(void *unused)
{
    (void)unused;
    for (intptr_t i = 1; i <= 6; i++) {
        co_queue_put(jobs_q, (void *)i, -1);
        printf("put %d\n", (int)i);
    }
    printf("producer done\n");
    return NULL;
}

static void *jobs_main(void *unused)
{
    (void)unused;
    if (!(jobs_q = co_queue_new(0)))
        return "no queue";
    co_t *c[2] = {co_spawn(consumer, "ann"), co_spawn(consumer, "bob")};
    co_t *p = co_spawn(producer, NULL);
    if (!c[0] || !c[1] || !p || co_join(p, NULL, -1) < 0 ||
        co_queue_join(jobs_q, -1) < 0)
        return "spawn or join failed";
    printf("every item done\n");
    co_cancel(c[0]);
    co_cancel(c[1]);
    co_join_all(c, 2, -1);
    printf("consumers stopped\n");
    co_queue_free(jobs_q);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *err = NULL;
    if (co_run(jobs_main, NULL, &err) < 0 || err) {
        fprintf(stderr, "jobs: %s\n", err ? (char *)err : "co_run failed");
        return 1;
    }
    return 0;
}
