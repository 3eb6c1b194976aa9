/*
 * eat_play: two coroutines take turns while they sleep; joining both hands
 * back what each returned (gevent's spawn / joinall / value). The same
 * program in gevent is examples/py/eat_play.py; both print
 * examples/eat_play.expected.
 */
#include <stdio.h>

#include "coserve.h"

static void *eat(void *name)
{
    printf("%s eats: bite 1\n", (char *)name);
    co_sleep(co_deadline(200)); /* the other coroutine runs meanwhile */
    printf("%s eats: bite 2\n", (char *)name);
    return "full";
}

static void *play(void *name)
{
    printf("%s plays: round 1\n", (char *)name);
    co_sleep(co_deadline(300));
    printf("%s plays: round 2\n", (char *)name);
    return "tired";
}

static void *eat_play_main(void *unused)
{
    (void)unused;
    co_t *g1 = co_spawn(eat, "egon"), *g2 = co_spawn(play, "egon");
    if (!g1 || !g2)
        return "spawn failed";
    printf("both spawned, none ran yet\n");
    void *v1, *v2;
    if (co_join(g1, &v1, -1) < 0 || co_join(g2, &v2, -1) < 0)
        return "join failed";
    printf("eat returned %s, play returned %s\n", (char *)v1, (char *)v2);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *err = NULL;
    if (co_run(eat_play_main, NULL, &err) < 0 || err) {
        fprintf(stderr, "eat_play: %s\n", err ? (char *)err : "co_run failed");
        return 1;
    }
    return 0;
}
