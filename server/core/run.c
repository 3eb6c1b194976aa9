/* co_run: the public way to turn a thread into a hub. */
#include <errno.h>

#include "core/coro.h"
#include "core/hub.h"

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
    struct hub *hub = hub__create();
    if (!hub)
        return -1;
    struct co *main = coro__spawn(hub, NULL, fn, arg);
    if (!main) {
        hub__destroy(hub);
        errno = ENOMEM;
        return -1;
    }
    co_set_name(main, "main");
    hub__run(hub, run_done, main);
    if (result)
        *result = main->result;
    coro__free(main);
    hub__destroy(hub);
    return 0;
}
