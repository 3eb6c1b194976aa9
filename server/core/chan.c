/*
 * co_chan: a bounded FIFO of fixed-size messages.
 *
 * Messages go straight from a sender to a waiting receiver (and from a
 * waiting sender into the buffer when a receiver makes room), so a woken
 * coroutine's operation is already complete: nobody can steal its message
 * between the wake and its turn to run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/log.h"
#include "core/wait.h"

struct co_chan {
    size_t elem_size, capacity;
    size_t head, count; /* ring buffer of capacity messages */
    int closed;
    struct list senders;   /* waiting, wait_data = their message */
    struct list receivers; /* waiting, wait_data = where to put one */
    struct list watchers;  /* co_wait_any nodes (wait.h) */
    unsigned char *buf;
};

co_chan_t *co_chan_new(size_t elem_size, size_t capacity)
{
    if (elem_size == 0 || (capacity && elem_size > SIZE_MAX / capacity)) {
        errno = EINVAL;
        return NULL;
    }
    co_chan_t *ch = malloc(sizeof *ch);
    if (!ch)
        return NULL;
    ch->buf = capacity ? malloc(elem_size * capacity) : NULL;
    if (capacity && !ch->buf) {
        free(ch);
        return NULL;
    }
    ch->elem_size = elem_size;
    ch->capacity = capacity;
    ch->head = ch->count = 0;
    ch->closed = 0;
    list_init(&ch->senders);
    list_init(&ch->receivers);
    list_init(&ch->watchers);
    return ch;
}

void co_chan_free(co_chan_t *ch)
{
    if (!ch)
        return;
    if (!list_empty(&ch->senders) || !list_empty(&ch->receivers) ||
        !list_empty(&ch->watchers))
        log__fatal("co_chan_free: coroutines still wait on the channel");
    free(ch->buf);
    free(ch);
}

static void *chan_slot(co_chan_t *ch, size_t i)
{
    return ch->buf + ((ch->head + i) % ch->capacity) * ch->elem_size;
}

static struct co *chan_first(struct list *q)
{
    return list_empty(q) ? NULL : list_entry(q->next, struct co, wait_link);
}

int co_chan_send(co_chan_t *ch, const void *elem, int64_t deadline)
{
    struct co *self = coro__self("co_chan_send");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (ch->closed) {
        errno = EPIPE;
        return -1;
    }
    struct co *rx = chan_first(&ch->receivers);
    if (rx) { /* a receiver waits: the buffer is empty, hand it over */
        memcpy(rx->wait_data, elem, ch->elem_size);
        coro__wake(rx, 0);
        return 0;
    }
    if (ch->count < ch->capacity) {
        memcpy(chan_slot(ch, ch->count++), elem, ch->elem_size);
        wait__notify(&ch->watchers); /* readable now */
        return 0;
    }
    self->wait_data = (void *)elem;
    /* a waiting sender makes the channel readable */
    wait__notify(&ch->watchers);
    return coro__wait_on(self, &ch->senders, deadline);
}

int co_chan_recv(co_chan_t *ch, void *elem, int64_t deadline)
{
    struct co *self = coro__self("co_chan_recv");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    struct co *tx = chan_first(&ch->senders);
    if (ch->count) {
        memcpy(elem, chan_slot(ch, 0), ch->elem_size);
        ch->head = (ch->head + 1) % ch->capacity;
        ch->count--;
        if (tx) { /* room now: the longest-waiting sender's message moves in */
            memcpy(chan_slot(ch, ch->count++), tx->wait_data, ch->elem_size);
            coro__wake(tx, 0);
        }
        wait__notify(&ch->watchers); /* writable now */
        return 0;
    }
    if (tx) { /* unbuffered: take it from the sender directly */
        memcpy(elem, tx->wait_data, ch->elem_size);
        coro__wake(tx, 0);
        return 0;
    }
    if (ch->closed) {
        errno = EPIPE;
        return -1;
    }
    self->wait_data = elem;
    /* a waiting receiver makes the channel writable */
    wait__notify(&ch->watchers);
    return coro__wait_on(self, &ch->receivers, deadline);
}

void co_chan_close(co_chan_t *ch)
{
    hub__require("co_chan_close");
    if (ch->closed)
        return;
    ch->closed = 1;
    while (coro__wake_first(&ch->senders, EPIPE))
        ;
    while (coro__wake_first(&ch->receivers, EPIPE))
        ;
    wait__notify(&ch->watchers);
}

int chan__ready(co_chan_t *ch)
{
    int r = ch->closed || ch->count || !list_empty(&ch->senders);
    int w =
        ch->closed || ch->count < ch->capacity || !list_empty(&ch->receivers);
    return (r ? CO_READABLE : 0) | (w ? CO_WRITABLE : 0);
}

struct list *chan__watchers(co_chan_t *ch)
{
    return &ch->watchers;
}
