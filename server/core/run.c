/* co_run: the public way to turn a thread into a hub. */
#include <errno.h>

#include "core/coro.h"
#include "core/hub.h"
#include "core/offload.h"
#include "core/overflow.h"
#include "core/watchdog.h"

/* A hub and the services that live beside the scheduler in it: the
 * alternate signal stack for overflow and watchdog reports, offload's
 * completions, registration with the watchdog when it is on. Wired here,
 * above them all, so the scheduler includes none of them (each of them
 * reads the scheduler's state). */
static struct hub *run_hub_create(void)
{
    struct hub *hub = hub__create();
    if (!hub)
        return NULL;
    if (overflow__thread_init() < 0) {
        hub__destroy(hub);
        errno = ENOMEM;
        return NULL;
    }
    offload__hub_init(hub);
    if (watchdog__hub_init(hub) < 0) {
        int err = errno;
        offload__hub_destroy(hub);
        hub__destroy(hub);
        errno = err;
        return NULL;
    }
    return hub;
}

static void run_hub_destroy(struct hub *hub)
{
    watchdog__hub_fini(hub);
    offload__hub_destroy(hub);
    hub__destroy(hub);
}

/* Done when main has returned and, after cancelling everyone else, nothing
 * is left: no coroutine, no offload whose abandon callback is due. */
static int run_done(struct hub *hub, void *arg)
{
    struct co *main = arg;
    if (main->state != CORO_DONE)
        return 0;
    for (struct list *n = hub->all.next; n != &hub->all; n = n->next) {
        struct co *co = list_entry(n, struct co, all_link);
        if (!co->cancelled)
            co_cancel(co);
    }
    return hub->live == 0 && hub->offloads == 0;
}

int co_run(co_fn fn, void *arg, void **result)
{
    struct hub *hub = run_hub_create();
    if (!hub)
        return -1;
    struct co *main = coro__spawn(hub, NULL, fn, arg);
    if (!main) {
        run_hub_destroy(hub);
        errno = ENOMEM;
        return -1;
    }
    co_set_name(main, "main");
    hub__run(hub, run_done, main);
    if (result)
        *result = main->result;
    coro__free(main);
    run_hub_destroy(hub);
    return 0;
}
